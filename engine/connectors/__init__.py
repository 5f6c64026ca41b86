"""Connector types: the real I/O behind ``this.connect(connector_type=..., **params)``.

The engine runs a CONNECTION execution in a worker thread roughly like this::

    params = merge_params(stored, inline)                  # record mask_secrets(params)
    policy, timeout, params = policy_from_params(params)
    connector = get_connector(connector_type)
    output = run_with_retries(connector, resolve_env(params), idempotency_key=key,
                              policy=policy, timeout=timeout, on_attempt=record_attempt)
"""

from engine.connectors.base import Connector, ConnectorError
from engine.connectors.masking import MASK, is_secret_key, listed_names, mask_secrets
from engine.connectors.params import merge_params, resolve_env
from engine.connectors.registry import get_connector, known_types
from engine.connectors.retry import RetryPolicy, policy_from_params, run_with_retries

__all__ = [
    "Connector",
    "ConnectorError",
    "MASK",
    "RetryPolicy",
    "get_connector",
    "is_secret_key",
    "known_types",
    "listed_names",
    "mask_secrets",
    "merge_params",
    "policy_from_params",
    "resolve_env",
    "run_with_retries",
]
