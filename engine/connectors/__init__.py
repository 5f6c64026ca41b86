"""Connector types: the real I/O behind ``this.connect(connector_type=..., **params)``.

The engine runs a CONNECTION execution in a worker thread, one attempt per activation,
roughly like this (``engine.connection_runner``)::

    params = merge_params(stored, inline)                  # record mask_secrets(params)
    policy, timeout, params = policy_from_params(params)
    connector = get_connector(connector_type)
    outcome = try_once(connector, resolve_env(params), idempotency_key=key, timeout=timeout)
    # record the attempt; if policy.retries_after(attempt, outcome.error): wait policy.delay(...)
    # on a durable timer and run the next attempt in a later activation

``run_with_retries`` does the same in one thread, for calls outside the engine.
"""

from engine.connectors.base import Connector, ConnectorError
from engine.connectors.masking import MASK, is_secret_key, listed_names, mask_secrets
from engine.connectors.params import merge_params, resolve_env
from engine.connectors.registry import get_connector, known_types
from engine.connectors.retry import (
    Outcome,
    RetryPolicy,
    policy_from_params,
    run_with_retries,
    try_once,
)

__all__ = [
    "Connector",
    "ConnectorError",
    "MASK",
    "Outcome",
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
    "try_once",
]
