"""Controlling executions on a user's request: start, pause, resume, cancel, retry, fork.

The ``engine`` CLI commands of the same names call these; so can Python code::

    from engine import control
    control.cancel(engine, "3f2a")          # an id or a unique prefix

Each operation is one store transaction that checks the status it acts on and
records what it did in the execution's log. Nothing here runs the execution: a
worker (``engine worker``, or ``Engine.run_until_ended``) picks up what became QUEUED.

Retry and resume rely on the log's structure: ``AttemptStarted`` starts a new attempt
from the top (a replay sees only the events after the last one), and
``ExecutionControlled`` markers are skipped by replays (``store.events.replay_history``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from engine import arguments
from engine.api import Engine
from engine.errors import EngineError
from engine.fork_children import own_children
from engine.ids import new_id
from store import values
from store.errors import UnknownExecutionError, WrongStatusError
from store.events import (
    AttemptStarted,
    Event,
    ExecutionCancelled,
    ExecutionControlled,
    ExecutionEnded,
    ExecutionStarted,
    ForkOrigin,
    replay_history,
)
from store.model import ExecutionRow, NewExecution, Status

T = TypeVar("T")


class ControlResult(msgspec.Struct):
    """What a control operation did: ``before`` -> ``status`` of execution ``id``."""

    id: str
    action: str
    before: str
    status: str
    cancelled: list[str] = []
    woken: list[str] = []
    attempt: int | None = None
    flow_version: str | None = None
    source: str | None = None
    at_seq: int | None = None
    note: str = ""
    recreated: dict[str, str] = {}
    shared: list[str] = []


def _apply(engine: Engine, row: ExecutionRow, operation: Callable[[], T], refusal: Callable[[str], str]) -> T:
    """Run the store's control ``operation``, wording its refusal for the user."""
    try:
        return operation()
    except WrongStatusError as exc:
        raise EngineError(refusal(exc.status)) from None
    except UnknownExecutionError:
        raise EngineError(f"no execution {row.id!r} in {engine.store.path}; `engine ls` lists them") from None


def start(engine: Engine, execution_id: str) -> ControlResult:
    """Run a PAUSED execution (one created with ``run=False``, or paused): it becomes QUEUED."""
    row = engine.get(execution_id)
    status = _apply(engine, row, lambda: engine.store.start_execution(row.id, time.time()), lambda s: (
        f"execution {row.id} is {s}, not PAUSED: `engine start` runs executions created with run=False "
        f"or paused with `engine pause`" + (f"; `engine resume {row.id}` continues a HALTED one" if s == Status.HALTED else "")
    ))
    return ControlResult(row.id, "start", Status.PAUSED, status)


def pause(engine: Engine, execution_id: str) -> ControlResult:
    """Pause a QUEUED or WAITING execution now (its waits and timer are kept for
    ``resume``); a RUNNING one pauses at its next suspension or commit point."""
    row = engine.get(execution_id)

    def refusal(status: str) -> str:
        if status == Status.PAUSED:
            return f"execution {row.id} is already PAUSED; `engine resume {row.id}` continues it"
        if status == Status.HALTED:
            return (f"execution {row.id} is HALTED (its code diverged from its history) and not running: "
                    f"fix the flow and `engine resume {row.id}`, or `engine cancel {row.id}`")
        return (f"execution {row.id} has already ended ({status}) and cannot be paused; "
                "only QUEUED, WAITING or RUNNING executions can")

    before, after = _apply(engine, row, lambda: engine.store.pause_execution(row.id, time.time()), refusal)
    note = "pause requested: it pauses at its next suspension or commit point" if after == Status.RUNNING else ""
    return ControlResult(row.id, "pause", before, after, note=note)


def resume(engine: Engine, execution_id: str, flow_version: str | None = None) -> ControlResult:
    """Continue a PAUSED execution where it was (QUEUED or WAITING), or a HALTED one
    re-pinned to ``flow_version`` (default: the flow's current registered version), so
    that after a nondeterminism halt and a code fix it replays on the fixed code; if
    that replay is still inconsistent with the history it halts again.

    On a RUNNING execution whose pause was requested, withdraws the request.
    """
    row = engine.get(execution_id)
    version = None
    if row.status == Status.HALTED:
        version = _pick_version(engine, row, flow_version or "current")
    elif flow_version is not None:
        version = _pick_version(engine, row, flow_version)
    before, after = _apply(engine, row, lambda: engine.store.resume_execution(row.id, version, time.time()), lambda s: (
        f"execution {row.id} is {s}: resume continues PAUSED or HALTED executions"
        + (f"; `engine retry {row.id}` runs it again from the top" if s in (Status.ENDED_ERROR, Status.ENDED_CANCELLED) else "")
    ))
    if before == Status.RUNNING:
        return ControlResult(row.id, "resume", before, after, note="pause request withdrawn")
    return ControlResult(row.id, "resume", before, after, flow_version=version)


def cancel(engine: Engine, execution_id: str) -> ControlResult:
    """Cancel an execution and its descendants that have not ended (ENDED_CANCELLED,
    recorded in each log). Waiters of a cancelled execution wake; with ALL_SUCCEEDED
    they get ``DependencyFailedError``. A RUNNING one cannot commit anything more."""
    row = engine.get(execution_id)
    cancelled, woken = _apply(engine, row, lambda: engine.store.cancel_execution(row.id, time.time()), lambda s: (
        f"execution {row.id} has already ended ({s}) and so have all its descendants: nothing to cancel"
    ))
    after = Status.ENDED_CANCELLED if row.id in cancelled else row.status
    return ControlResult(row.id, "cancel", row.status, after, cancelled=cancelled, woken=woken)


def retry(engine: Engine, execution_id: str, flow_version: str | None = None) -> ControlResult:
    """Run an ENDED_ERROR, ENDED_CANCELLED or HALTED execution again from the top, as a
    new attempt of the same execution on ``flow_version`` (default: the flow's current
    version). The old attempts stay in its log; children they created stay too."""
    row = engine.get(execution_id)
    version = row.flow_version if row.type != "FLOW" else _pick_version(engine, row, flow_version or "current")

    def refusal(status: str) -> str:
        if status == Status.ENDED_SUCCESS:
            return (f"execution {row.id} ended ENDED_SUCCESS: only ENDED_ERROR, ENDED_CANCELLED or HALTED "
                    f"executions can be retried; to run it again, `engine fork {row.id} --at 1` (with -i KEY=VALUE "
                    "to change inputs)")
        return (f"execution {row.id} is {status} and has not ended: only ENDED_ERROR, ENDED_CANCELLED or HALTED "
                f"executions can be retried (`engine cancel {row.id}` first to start over)")

    attempt = _apply(engine, row, lambda: engine.store.retry_execution(row.id, version, time.time()), refusal)
    return ControlResult(row.id, "retry", row.status, Status.QUEUED, attempt=attempt, flow_version=version)


def fork(
    engine: Engine, execution_id: str, at_seq: int, inputs: dict[str, Any] | None = None, *,
    flow_version: str | None = None, name: str | None = None,
) -> ControlResult:
    """A new top-level execution that takes over the history of ``execution_id`` up to
    ``at_seq`` (answered from the copy on replay) and runs live from there; ``inputs``
    override the original's (the fork's own inputs: a call recorded before the cut keeps
    its recorded arguments). The original is not touched.

    The fork owns what it waits for: children of the copied history that had not ended
    at the cut are created anew for it, children that had ended are shared read-only
    (``engine.fork_children``).

    With other inputs, the calls taken over are answered from the copy whatever
    arguments the new inputs give them (their arguments are not checked).

    ``at_seq`` must not cut between a command and its outcome (a wait and its end, a
    sleep and its timer, a message and its answer) nor include the end of the
    execution; ``fork_points`` lists the valid seqs.
    """
    row = engine.get(execution_id)
    if row.type != "FLOW":
        raise EngineError(f"execution {row.id} is a {row.type} execution; only flow executions can be forked")
    events = engine.store.load_events(row.id)
    points = fork_points(events)
    if at_seq not in points:
        raise EngineError(_bad_cut(row.id, at_seq, events, list(points)))
    view = replay_history([e for e in events if e.seq <= at_seq])
    started = view[0].body
    assert isinstance(started, ExecutionStarted)
    merged = {**(started.input_value or {}), **(inputs or {})}
    try:
        merged = values.roundtrip(merged)
    except values.UnrecordableValueError as exc:
        raise EngineError(f"inputs for the fork of {row.id} cannot be recorded: {exc}") from None
    version = points[at_seq] if flow_version is None else _pick_version(engine, row, flow_version)
    new = NewExecution(
        id=new_id(), flow=row.flow, flow_version=version, input_value=merged, status=Status.QUEUED,
        type=row.type, name=row.name if name is None else name, project=row.project,
    )
    cut_at = next(e.at for e in events if e.seq == at_seq)
    taken = view[1:] if merged == started.input_value else arguments.unchecked(view[1:])  # made with other inputs
    owned = own_children(engine.store, row.id, new.id, taken, cut_at)
    origin = ForkOrigin(row.id, at_seq, owned.recreated, owned.shared)
    marker = ExecutionControlled("fork", "", Status.QUEUED, version, f"forked from {row.id} at seq {at_seq}", origin)
    engine.store.fork_execution(new, owned.events, owned.creates, marker, time.time())
    return ControlResult(new.id, "fork", "", Status.QUEUED, flow_version=version, source=row.id, at_seq=at_seq,
                         recreated=owned.recreated, shared=owned.shared)


def fork_points(events: list[Event]) -> dict[int, str]:
    """The seqs a fork may cut at, each with the flow version in force there: every
    seq where no command waits for its outcome and the attempt has not ended."""
    return {seq: version for seq, version, blocker in _scan(events) if blocker is None}


def _scan(events: list[Event]) -> list[tuple[int, str, Event | None]]:
    """For each seq: the flow version in force, and the event that makes it no cut point
    (an end, or a command whose outcome is not recorded yet) or None."""
    out: list[tuple[int, str, Event | None]] = []
    first = events[0].body
    version = first.flow_version if isinstance(first, ExecutionStarted) else ""
    ended: Event | None = None
    opened: Event | None = None
    for event in events:
        body = event.body
        if isinstance(body, AttemptStarted):
            ended, opened, version = None, None, body.flow_version
        elif isinstance(body, ExecutionControlled):
            version = body.flow_version or version
        elif isinstance(body, (ExecutionEnded, ExecutionCancelled)):
            ended = event
        elif body.waits:
            opened = event
        elif opened is not None and type(body) is opened.body.completed_by:
            opened = None
        out.append((event.seq, version, ended or opened))
    return out


def _bad_cut(execution_id: str, seq: int, events: list[Event], valid: list[int]) -> str:
    blockers = {s: b for s, _, b in _scan(events)}
    blocker = blockers.get(seq)
    if seq not in blockers:
        why = f"its log has seqs 1 to {events[-1].seq}"
    elif blocker is not None and isinstance(blocker.body, (ExecutionEnded, ExecutionCancelled)):
        how = blocker.body.status if isinstance(blocker.body, ExecutionEnded) else Status.ENDED_CANCELLED
        why = f"the execution ended ({how}) at seq {blocker.seq}; a fork must cut before its end"
    else:
        assert blocker is not None
        why = (f"it would cut between a command and its outcome: the {blocker.command or blocker.kind} at seq "
               f"{blocker.seq} has its outcome recorded later (or not yet)")
    return f"cannot fork execution {execution_id} at seq {seq}: {why}; valid seqs: {_ranges(valid)}"


def _ranges(seqs: list[int]) -> str:
    """``1-4, 6, 8-9``."""
    if not seqs:
        return "none"
    parts, first, last = [], seqs[0], seqs[0]
    for s in seqs[1:] + [0]:
        if s == last + 1:
            last = s
            continue
        parts.append(str(first) if first == last else f"{first}-{last}")
        first = last = s
    return ", ".join(parts)


def _pick_version(engine: Engine, row: ExecutionRow, spec: str) -> str:
    """``current`` (the flow's registered version) or a version hash (prefix) of the flow."""
    if spec == "current":
        found = engine.store.get_flow(row.flow)
        if found is None:
            raise EngineError(f"flow {row.flow!r} is no longer registered; `engine flows sync DIR` registers it")
        return found.version
    matches = [v.version for v in engine.store.flow_versions(row.flow) if v.version.startswith(spec)]
    if len(matches) != 1:
        known = ", ".join(v.version[:12] for v in engine.store.flow_versions(row.flow)) or "none"
        what = "matches no" if not matches else "is ambiguous between"
        raise EngineError(f"flow version {spec!r} {what} versions of flow {row.flow!r} (known: {known})")
    return matches[0]
