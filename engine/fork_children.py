"""What a fork owns: the children of the history it copies.

A fork copies an execution's history up to a seq and runs live from there. Each child
that history created and that had not ended at the cut is created anew for the fork from
the recorded call (same flow, flow version, name and inputs; PAUSED if it was created
with ``run=False`` and not started before the cut) under the id a live call of the fork
would give it (``ids.child_id(fork, seq)``), and the copied events that name it are
rewritten to name the new child: the fork's replay hands its handler its own child, which
belongs to its tree. A child that had ended at the cut is shared read-only: its outcome
is part of the copied history and nothing the fork does can change it.
"""

from __future__ import annotations

from typing import Any

import msgspec

from engine.errors import EngineError
from engine.ids import child_id
from store.base import Store
from store.events import (
    ChildCancelled,
    ChildCreated,
    ChildStarted,
    Event,
    EventBody,
    ExecutionRead,
    ExecutionsQueried,
    WaitCompleted,
    WaitStarted,
)
from store.model import ExecutionRow, NewExecution, Status


class ForkChildren(msgspec.Struct):
    """The fork's copy of the history (seqs from 2, children renamed) and its children.

    ``recreated``: original child id -> the fork's new child; ``shared``: children that had
    ended at the cut, which the fork's history keeps naming.
    """

    events: list[Event]
    creates: list[NewExecution]
    recreated: dict[str, str]
    shared: list[str]


def own_children(store: Store, source_id: str, fork_id: str, copied: list[Event], cut_at: float) -> ForkChildren:
    """Take over ``copied`` (the source's history after its ``ExecutionStarted``, up to the
    cut made at time ``cut_at``) for the fork ``fork_id``. A child had ended at the cut if
    a wait in the copy saw it end, or it ended no later than ``cut_at``."""
    events = [Event(seq, e.at, e.body, e.line) for seq, e in enumerate(copied, 2)]
    started = {b.child_id for b in (e.body for e in events) if isinstance(b, ChildStarted)}
    started.update(i for e in events if isinstance(e.body, WaitStarted) for i in e.body.started)
    seen_ended = {i for e in events if isinstance(e.body, WaitCompleted) for i in e.body.statuses}
    creates: list[NewExecution] = []
    recreated: dict[str, str] = {}
    shared: list[str] = []
    for event in events:
        body = event.body
        if not isinstance(body, ChildCreated):
            continue
        row = store.get_execution(body.child_id)
        if row is None:
            raise EngineError(f"cannot fork execution {source_id}: its child {body.child_id} (created at seq "
                              f"{event.seq} of the copy) is not in {store.path}; fork at an earlier seq")
        if row.id in seen_ended or (row.ended and row.ended_at is not None and row.ended_at <= cut_at):
            shared.append(row.id)
            continue
        new = child_id(fork_id, event.seq)
        recreated[row.id] = new
        run = body.run or row.id in started
        creates.append(NewExecution(
            id=new, flow=row.flow, flow_version=body.flow_version, input_value=_inputs(row, fork_id, event.seq),
            status=Status.QUEUED if run else Status.PAUSED, type=row.type, name=row.name, parent_id=fork_id,
            root_id=fork_id, depth=1, project=row.project,
        ))
    if recreated:
        events = [Event(e.seq, e.at, renamed(e.body, recreated), e.line) for e in events]
    return ForkChildren(events, creates, recreated, shared)


def _inputs(row: ExecutionRow, fork_id: str, seq: int) -> Any:
    """The recorded inputs; a connection's idempotency key is the fork's call's own."""
    if row.type == "CONNECTION":
        return {**row.input_value, "idempotency_key": f"{fork_id}:{seq}"}
    return row.input_value


def renamed(body: EventBody, ids: dict[str, str]) -> EventBody:
    """``body`` with every execution id it names replaced through ``ids``."""

    def one(i: str) -> str:
        return ids.get(i, i)

    replace = msgspec.structs.replace
    if isinstance(body, (ChildCreated, ChildStarted, ChildCancelled)):
        return replace(body, child_id=one(body.child_id))
    if isinstance(body, WaitStarted):
        return replace(body, targets=[one(i) for i in body.targets], started=[one(i) for i in body.started])
    if isinstance(body, WaitCompleted):
        return replace(body, statuses={one(i): s for i, s in body.statuses.items()},
                       failures={one(i): f for i, f in body.failures.items()})
    if isinstance(body, ExecutionRead):
        return replace(body, target=one(body.target))
    if isinstance(body, ExecutionsQueried):
        return replace(body, ids=[one(i) for i in body.ids])
    return body
