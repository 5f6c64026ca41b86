"""CONNECTION executions: a worker runs a connector outside any handler, records every
attempt on the connection's own log, then its result as the output.

Secrets: the parameters are recorded with literal secrets masked (``***``, see
``engine.connectors.masking``); references such as ``'${env:API_TOKEN}'`` are kept and resolved only
when the connector runs, so the secret itself never reaches the database. The worker
that creates a connection keeps the unmasked parameters in memory and normally runs it
itself. Any other worker (after a crash, or when the creator was busy) takes masked
values from the stored connector they came from; a literal secret given inline to
``this.connect`` cannot be recovered, and that connection fails saying to use
``${env:NAME}``.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from typing import Any

from engine.clock import Clock
from engine.connectors import (
    MASK,
    ConnectorError,
    get_connector,
    listed_names,
    mask_secrets,
    merge_params,
    policy_from_params,
    resolve_env,
    run_with_retries,
)
from engine.decision import Decision
from store.events import ConnectionAttempt, ErrorInfo, Event, ExecutionEnded
from store.faults import fault_point
from store.model import ConnectorWrite, ExecutionRow

ConnectorLookup = Callable[[str], "ConnectorWrite | None"]


def connection_spec(
    connector_type: str, connector: str | None, stored: Mapping[str, Any], overrides: Mapping[str, Any], key: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what to record as the connection's input, the parameters to run it with).

    The stored connector's parameters are merged under the inline ``overrides``. When
    literal secrets were masked, ``secrets`` says where a worker must find them:
    ``connector`` (re-read the stored connector) or ``inline`` (only in memory).
    """
    params = merge_params(stored, overrides)
    listed_names(params)  # refuse a malformed secrets=[...] before anything is recorded
    recorded = mask_secrets(params)
    spec = {"connector_type": connector_type.upper(), "connector": connector, "params": recorded,
            "idempotency_key": key}
    if recorded != params:
        spec["secrets"] = "inline" if mask_secrets(dict(overrides)) != overrides else "connector"
    return spec, params


def run_connection(
    row: ExecutionRow,
    last_seq: int,
    clock: Clock,
    record: Callable[[Event], None],
    inline_params: dict[str, Any] | None,
    connectors: ConnectorLookup | None = None,
) -> Decision:
    """Run the connector of CONNECTION execution ``row``; ``record`` commits each attempt.

    ``inline_params``: the unmasked parameters, if this worker created the connection;
    ``connectors``: looks up stored connectors, to fill in masked values otherwise.
    """
    spec = row.input_value
    connector_type, key = spec["connector_type"], spec["idempotency_key"]
    names = listed_names(spec["params"])
    seq = last_seq

    def ended(status: str, message: str | None, output: Any, error: ErrorInfo | None) -> Decision:
        event = Event(seq + 1, clock(), ExecutionEnded(status, message, output, error))
        return Decision("end", [event], status=status, message=message, output_value=output, error=error)

    def on_attempt(attempt: int, result: Any, error: ConnectorError | None, seconds: float) -> None:
        nonlocal seq
        fault_point("connection.sent")
        seq += 1
        retryable = bool(error is not None and error.retryable)
        info = None if error is None else _error_info(error, names)
        record(Event(seq, clock(), ConnectionAttempt(attempt, error is None, seconds, info, retryable)))

    try:
        params = inline_params if inline_params is not None else _unmasked(row.id, spec, connectors, names)
        connector = get_connector(connector_type)
        policy, timeout, rest = policy_from_params(resolve_env(params))
        output = run_with_retries(
            connector, rest, idempotency_key=key, policy=policy, timeout=timeout, on_attempt=on_attempt,
        )
    except ConnectorError as exc:
        info = _error_info(exc, names)
        return ended("ENDED_ERROR", info.message, {"error": mask_secrets(exc.to_dict(), names)}, info)
    return ended("ENDED_SUCCESS", None, output, None)


def _error_info(error: ConnectorError, names: tuple[str, ...]) -> ErrorInfo:
    """The connector's message says it all; a traceback only for a connector's own bug."""
    cause = error.__cause__
    text = "" if cause is None else "".join(traceback.format_exception(cause))
    return ErrorInfo("ConnectorError", mask_secrets(str(error), names), mask_secrets(text, names))


def _unmasked(
    connection_id: str, spec: dict[str, Any], connectors: ConnectorLookup | None, names: tuple[str, ...]
) -> dict[str, Any]:
    """The recorded parameters with masked secrets filled in from the stored connector."""
    params: dict[str, Any] = spec["params"]
    where, name = spec.get("secrets"), spec.get("connector")
    if where is None:
        return params
    if where == "connector" and name and connectors is not None:
        stored = connectors(name)
        filled = _fill(params, stored.value, names) if stored is not None else params
        if not _has_mask(filled):
            return filled
        raise ConnectorError(
            f"connection {connection_id}: its secret parameters come from stored connector {name!r}, which was "
            "changed or deleted since the connection was created; start a new connection",
            retryable=False,
        )
    raise ConnectorError(
        f"connection {connection_id}: a literal secret was given inline to this.connect and is not recorded, "
        "and the worker holding it stopped before the connection ran; reference secrets as '${env:NAME}' or "
        "keep them in a stored connector (`engine connectors set`) so that any worker can run it",
        retryable=False,
    )


def _fill(recorded: Any, source: Any, names: tuple[str, ...]) -> Any:
    """``recorded`` with each value that ``source`` masks to replaced by ``source``'s."""
    if not isinstance(recorded, dict) or not isinstance(source, Mapping):
        return recorded
    out = {}
    for key, value in recorded.items():
        if key in source and mask_secrets({key: source[key]}, names) == {key: value}:
            out[key] = source[key]
        else:
            out[key] = _fill(value, source.get(key), names)
    return out


def _has_mask(value: Any) -> bool:
    if isinstance(value, str):
        return MASK in value
    if isinstance(value, dict):
        return any(_has_mask(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_mask(v) for v in value)
    return False
