"""What ``engine show`` tells about one execution beyond its row: the flow version it
runs, its children, its dependencies, and where its time went."""

from __future__ import annotations

import time
from collections.abc import Iterator

import msgspec

from engine.api import Engine
from engine.clock import system_clock
from store.events import (
    Event,
    ExecutionControlled,
    ExecutionEnded,
    ForkOrigin,
    LogRecorded,
    SleepStarted,
)
from store.flow_origins import FlowOrigins
from store.model import ExecutionRow, Status


class VersionInfo(msgspec.Struct):
    """The flow version an execution is pinned to, and the flow's current one."""

    version: str
    current: str | None
    path: str | None
    registered_at: float | None
    git_commit: str | None = None  # the commit `flows sync --git` read the pinned version from


class Dependency(msgspec.Struct):
    id: str
    flow: str | None
    status: str | None
    since: float


class Timings(msgspec.Struct):
    """Seconds: ``queued`` before a worker first ran it, ``waiting`` on timers,
    children and messages (holding nothing), ``running`` the rest."""

    created_at: float
    started_at: float | None
    ended_at: float | None
    queued: float | None
    waiting: float
    running: float | None
    total: float | None
    timers: int
    waits: int
    events: int
    last_event_at: float | None


class Details(msgspec.Struct):
    """``fork``: for a fork, what it copied, which children it re-created, which it shares."""

    execution: ExecutionRow
    version: VersionInfo
    children: list[ExecutionRow]
    waits_for: list[Dependency]
    waited_by: list[Dependency]
    timings: Timings
    fork: ForkOrigin | None = None


def details(engine: Engine, execution_id: str) -> Details:
    """Everything ``engine show`` prints about an execution (id or unique prefix)."""
    row = engine.get(execution_id)
    store = engine.store
    pinned = store.get_flow_version(row.flow_version) if row.flow_version else None
    current = store.get_flow(row.flow)
    version = VersionInfo(row.flow_version, current.version if current else None,
                          pinned.path if pinned else None, pinned.created_at if pinned else None,
                          FlowOrigins(store).commit_of(row.flow_version))
    waits_for, waited_by = store.dependencies(row.id)
    events = store.load_events(row.id)
    forks = [e.body.fork for e in events if isinstance(e.body, ExecutionControlled) and e.body.fork is not None]
    return Details(row, version, store.children(row.id), _deps(engine, waits_for), _deps(engine, waited_by),
                   timings(row, events, system_clock()), forks[0] if forks else None)


def _deps(engine: Engine, pairs: list[tuple[str, float]]) -> list[Dependency]:
    out = []
    for other_id, since in pairs:
        other = engine.store.get_execution(other_id)
        out.append(Dependency(other_id, other.flow if other else None, other.status if other else None, since))
    return out


def timings(row: ExecutionRow, events: list[Event], now: float) -> Timings:
    """Where the time went, from the row and its log (open waits count until ``now``)."""
    end = row.ended_at if row.ended_at is not None else now
    waiting, timers, waits = 0.0, 0, 0
    opened: Event | None = None
    for event in events:
        kind = type(event.body)
        if event.body.waits:
            opened = event
            timers += kind is SleepStarted
            waits += kind is not SleepStarted
        elif opened is not None and kind is opened.body.completed_by:
            waiting += max(event.at - opened.at, 0.0)
            opened = None
        elif isinstance(event.body, ExecutionEnded):
            opened = None
    if opened is not None:
        waiting += max(end - opened.at, 0.0)
    queued = None if row.started_at is None else row.started_at - row.created_at
    total = None if row.ended_at is None else row.ended_at - row.created_at
    running = None if row.started_at is None else max(end - row.started_at - waiting, 0.0)
    return Timings(row.created_at, row.started_at, row.ended_at, queued, waiting, running, total, timers, waits,
                   len(events), events[-1].at if events else None)


def follow(engine: Engine, execution_id: str, after_seq: int, poll: float = 0.2) -> Iterator[list[Event]]:
    """Yield the new events of an execution as they are committed, until it has ended
    (or halted: nothing more comes until someone resumes it)."""
    while True:
        row = engine.get(execution_id)
        events = engine.store.load_events(row.id, after_seq)
        if events:
            after_seq = events[-1].seq
            yield events
        if row.ended or row.status == Status.HALTED:
            return
        time.sleep(poll)


def logs(engine: Engine, execution_id: str, after_seq: int = 0) -> tuple[ExecutionRow, list[Event]]:
    """The execution and its ``this.log`` entries (``LogRecorded`` events) after ``after_seq``."""
    row = engine.get(execution_id)
    events = engine.store.load_events(row.id, after_seq)
    return row, [e for e in events if isinstance(e.body, LogRecorded)]
