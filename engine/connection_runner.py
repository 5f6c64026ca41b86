"""CONNECTION executions: a worker runs a connector outside any handler, records every
attempt on the connection's own log, then its result as the output.

Retries are durable: each activation makes one attempt; between attempts the
connection is WAITING on a timer whose due time is recorded with the failed attempt, so
a crash during a backoff loses nothing and the budget counts every recorded attempt.

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

import logging
import random
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
    try_once,
)
from engine.decision import Decision
from store.events import (
    ConnectionAttempt,
    ErrorInfo,
    Event,
    ExecutionEnded,
    replay_history,
)
from store.faults import fault_point
from store.model import ConnectorWrite, ExecutionRow, Status

log = logging.getLogger(__name__)

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
    events: list[Event],
    clock: Clock,
    inline_params: dict[str, Any] | None,
    connectors: ConnectorLookup | None = None,
) -> Decision:
    """Run the next attempt of CONNECTION execution ``row``, whose log is ``events``.

    One attempt per activation. The attempts already on the log (since the last ``engine
    retry``) count against the budget and continue the numbering, so a crash never grants
    a fresh budget. A failure that will be retried is recorded with its backoff (the delay
    chosen, jitter included, and when it is over) and the connection waits on that timer,
    holding no worker; a success, or a failure that ends the retries, is recorded together
    with the end.

    ``inline_params``: the unmasked parameters, if this worker created the connection;
    ``connectors``: looks up stored connectors, to fill in masked values otherwise.
    """
    spec = row.input_value
    names = listed_names(spec["params"])
    seq = events[-1].seq
    tries = [e.body for e in replay_history(events) if isinstance(e.body, ConnectionAttempt)]
    if tries and tries[-1].retry_at is not None and clock() < tries[-1].retry_at:
        return Decision("suspend", wake_at=tries[-1].retry_at)  # run before its backoff is over (a resume)
    attempt = len(tries) + 1
    try:
        params = inline_params if inline_params is not None else _unmasked(row.id, spec, connectors, names)
        connector = get_connector(spec["connector_type"])
        policy, timeout, rest = policy_from_params(resolve_env(params))
    except ConnectorError as exc:
        return _ended(seq, clock(), [], names, exc)
    key = spec["idempotency_key"]
    outcome = try_once(connector, rest, idempotency_key=key, timeout=timeout)
    fault_point("connection.sent")
    error, now = outcome.error, clock()
    if error is None:
        done = ConnectionAttempt(attempt, True, outcome.seconds)
        return _ended(seq, now, [done], names, None, outcome.result)
    info = _error_info(error, names)
    if policy.retries_after(attempt, error):
        delay = policy.delay(attempt, random.Random(f"{key}:{attempt}"))
        failed = ConnectionAttempt(attempt, False, outcome.seconds, info, True, delay, now + delay)
        log.info("connection %s: %s attempt %d failed (%s); retrying in %.2fs", row.id, connector.name, attempt,
                 info.message, delay)
        return Decision("suspend", [Event(seq + 1, now, failed)], wake_at=now + delay)
    final = ConnectorError(
        f"{error.message}; {policy.gave_up(attempt, error)}", retryable=error.retryable,
        details={**error.details, "attempts": attempt},
    )
    final.__cause__ = error.__cause__
    return _ended(seq, now, [ConnectionAttempt(attempt, False, outcome.seconds, info, error.retryable)], names, final)


def _ended(
    seq: int, at: float, attempts: list[ConnectionAttempt], names: tuple[str, ...], error: ConnectorError | None,
    output: Any = None,
) -> Decision:
    """End the connection: ``attempts`` (the last attempt, if one was made) and the end, in one commit."""
    if error is None:
        status, message, info = Status.ENDED_SUCCESS, None, None
    else:
        info = _error_info(error, names)
        status, message = Status.ENDED_ERROR, info.message
        output = {"error": mask_secrets(error.to_dict(), names)}
    bodies: list[ConnectionAttempt | ExecutionEnded] = [*attempts, ExecutionEnded(status, message, output, info)]
    events = [Event(seq + i, at, body) for i, body in enumerate(bodies, 1)]
    return Decision("end", events, status=status, message=message, output_value=output, error=info)


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
