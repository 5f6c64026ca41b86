"""CONNECTION executions: a worker runs a connector outside any handler and records
every attempt on the connection's own log, then its result as the output.

Parameters are recorded with literal secrets masked (``***``); references such as
``'${env:API_TOKEN}'`` are kept and resolved only when the connector runs, so the
secret itself never reaches the database. Literal secrets given inline live only in
the memory of the worker that created the connection: if that worker dies before
the connection ran, the connection fails with an error saying to use ``${env:NAME}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from engine.clock import Clock
from engine.connectors import (
    ConnectorError,
    get_connector,
    mask_secrets,
    policy_from_params,
    resolve_env,
    run_with_retries,
)
from engine.decision import Decision
from engine.errors import error_info
from store.faults import fault_point
from store.events import ConnectionAttempt, ErrorInfo, Event, ExecutionEnded
from store.model import ExecutionRow

MASK = "***"
_ENV_REF = re.compile(r"^\$\{env:[A-Za-z_][A-Za-z0-9_]*\}$")


def mask_recorded(value: Any) -> Any:
    """``value`` as it may be recorded: literal secrets masked, ``${env:NAME}`` kept."""
    return _keep_env_refs(value, mask_secrets(value))


def _keep_env_refs(original: Any, masked: Any) -> Any:
    if isinstance(original, str) and _ENV_REF.match(original):
        return original
    if isinstance(original, dict) and isinstance(masked, dict):
        return {k: _keep_env_refs(original[k], masked[k]) for k in original}
    if isinstance(original, (list, tuple)) and isinstance(masked, (list, tuple)):
        return [_keep_env_refs(o, m) for o, m in zip(original, masked)]
    return masked


def _has_mask(value: Any) -> bool:
    if value == MASK:
        return True
    if isinstance(value, dict):
        return any(_has_mask(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_mask(v) for v in value)
    return False


def run_connection(
    row: ExecutionRow,
    last_seq: int,
    clock: Clock,
    record: Callable[[Event], None],
    inline_params: dict[str, Any] | None,
) -> Decision:
    """Run the connector of CONNECTION execution ``row``; ``record`` commits each attempt."""
    spec = row.input_value
    connector_type, key = spec["connector_type"], spec["idempotency_key"]
    params = inline_params if inline_params is not None else spec["params"]
    seq = last_seq

    def ended(status: str, message: str | None, output: Any, error: ErrorInfo | None) -> Decision:
        event = Event(seq + 1, clock(), ExecutionEnded(status, message, output, error))
        return Decision("end", [event], status=status, message=message, output_value=output, error=error)

    if _has_mask(params):
        message = (
            f"connection {row.id} ({connector_type}): a secret parameter was given inline and is not stored, "
            "and the worker holding it stopped before the connection ran; reference secrets as '${env:NAME}' "
            "or in a stored connector so they survive a restart"
        )
        return ended("ENDED_ERROR", message, {}, ErrorInfo("ConnectorError", message))
    try:
        connector = get_connector(connector_type)
        policy, timeout, rest = policy_from_params(resolve_env(params))
    except ConnectorError as exc:
        return ended("ENDED_ERROR", f"connection {row.id}: {exc}", {}, error_info(exc))

    def on_attempt(attempt: int, result: Any, error: ConnectorError | None, seconds: float) -> None:
        nonlocal seq
        fault_point("connection.sent")
        seq += 1
        info = None if error is None else error_info(error)
        retryable = bool(error is not None and error.retryable)
        record(Event(seq, clock(), ConnectionAttempt(attempt, error is None, seconds, info, retryable)))

    try:
        output = run_with_retries(
            connector, rest, idempotency_key=key, policy=policy, timeout=timeout, on_attempt=on_attempt,
        )
    except ConnectorError as exc:
        return ended("ENDED_ERROR", f"connection {row.id}: {exc}", {}, error_info(exc))
    return ended("ENDED_SUCCESS", None, output, None)


