"""Schedules: start a flow, or sync the flows of a git repository
(``engine.git_actions``), at each slot of a cron expression, exactly once per slot
however many workers run (``store.schedules`` fires a slot in one compare-and-set
transaction).

Cron expressions have 5 fields (minute hour day month weekday) or 6, the sixth being
seconds (or are @hourly, @daily, @weekly, @monthly, @yearly); slots are computed in the schedule's time zone (IANA name, default UTC).
A slot found more than ``LATE_AFTER`` seconds late was missed (no worker ran then):
``catch_up`` decides what fires for missed slots: ``latest`` (the default) the most
recent one, ``all`` each of them (at most ``MAX_CATCH_UP`` slots in all, the most recent), ``none``
nothing. Each execution gets the input ``schedule``: ``{name, slot, slot_epoch}``.
A git-sync schedule syncs once per firing, for the latest of the slots that fire.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from engine import git_actions
from engine.errors import EngineError, NotFoundError
from engine.git_sync import check_source
from store import values
from store.base import Store
from store.git_actions import GitSource, SyncOutcome
from store.model import NewExecution
from store.schedules import ScheduleExistsError, ScheduleRow, ScheduleStore

log = logging.getLogger(__name__)

CATCH_UP = ("latest", "all", "none")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # as webhook names: it goes in URLs
_NICKNAMES = ("@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually")
#: A slot this many seconds late counts as missed (its workers were down), not merely late.
LATE_AFTER = 10.0
#: ``catch_up="all"`` fires at most this many missed slots, the most recent ones.
MAX_CATCH_UP = 100
#: Workers look for due schedules at least this often (and at each schedule's next slot).
CHECK_EVERY = 0.5


class ScheduleInfo(msgspec.Struct, frozen=True):
    """A schedule as ``engine schedules ls --json`` and ``GET /api/schedules`` show it:
    ``flow`` (None for a git sync), or ``git`` with ``last_sync`` (and its ``summary``)."""

    name: str
    flow: str | None
    cron: str
    timezone: str
    inputs: Any
    catch_up: str
    paused: bool
    next_slot: str | None
    last_slot: str | None
    last_execution: str | None
    action: str
    git: GitSource | None = None
    last_sync: SyncOutcome | None = None
    last_sync_summary: str | None = None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise EngineError(f"unknown time zone {name!r}: use an IANA name such as UTC or Europe/Vienna") from None


def _check_cron(expr: str) -> None:
    fields = len(expr.split())
    if not (fields in (5, 6) or expr.strip() in _NICKNAMES) or not croniter.is_valid(expr):
        raise EngineError(f"invalid cron expression {expr!r}: use 5 fields (minute hour day month weekday) "
                          "or 6 (the sixth: seconds), e.g. '*/5 * * * *', or @hourly, @daily, @weekly, @monthly")


def next_slot(cron: str, timezone: str, after: float) -> int:
    """The first slot of ``cron`` in ``timezone`` strictly after ``after`` (epoch seconds)."""
    start = datetime.fromtimestamp(int(after), _zone(timezone))
    try:
        return int(croniter(cron, start).get_next(float))
    except CroniterBadDateError:
        raise EngineError(f"cron expression {cron!r} has no slot after {start.isoformat()}: "
                          "check its day and month fields") from None


def _slot_text(slot: int | None, timezone: str) -> str | None:
    return None if slot is None else datetime.fromtimestamp(slot, _zone(timezone)).isoformat()


def info(row: ScheduleRow) -> ScheduleInfo:
    """What a listing shows of ``row``."""
    return ScheduleInfo(row.name, None if row.git else row.flow, row.cron, row.timezone, row.input_value, row.catch_up,
                        row.paused, None if row.paused else _slot_text(row.next_slot, row.timezone),
                        _slot_text(row.last_slot, row.timezone), row.last_execution,
                        git_actions.describe(row.git) if row.git else f"flow {row.flow}", row.git, row.last_sync,
                        git_actions.summary(row.last_sync) if row.last_sync else None)


def add(store: Store, name: str, flow: str | None, cron: str, *, git: GitSource | None = None,
        inputs: dict[str, Any] | None = None, timezone: str = "UTC", catch_up: str = "latest",
        start: str | None = None, now: float) -> ScheduleInfo:
    """Create the schedule ``name`` that starts ``flow``, or syncs the flows of ``git``
    (one of them); its first slot is the first one after ``now``, or at or after
    ``start`` (an ISO date, in ``timezone`` unless it names its own offset): a start in
    the past fires the slots missed since then as ``catch_up`` says."""
    if not _NAME.fullmatch(name):
        raise EngineError(f"invalid schedule name {name!r}: use up to 64 letters, digits, '_', '-' and '.', "
                          "starting with a letter or digit")
    if (flow is None) == (git is None):
        raise EngineError(f"schedule {name!r} needs one action: --flow FLOW or --git-sync REPO")
    if git is not None and inputs:
        raise EngineError(f"schedule {name!r} syncs flows from git and takes no inputs: drop -i/--inputs")
    _check_cron(cron)
    zone = _zone(timezone)
    first = now
    if start is not None:
        try:
            when = datetime.fromisoformat(start)
        except ValueError:
            raise EngineError(f"invalid start {start!r} for schedule {name!r}: use an ISO date such as 2026-01-31T08:00") from None
        first = (when if when.tzinfo else when.replace(tzinfo=zone)).timestamp() - 1
    if catch_up not in CATCH_UP:
        raise EngineError(f"invalid catch-up {catch_up!r} for schedule {name!r}: use one of {', '.join(CATCH_UP)}")
    if git is not None:
        git = check_source(git, f"schedule {name!r} was not added")
    elif store.get_flow(flow or "") is None:
        raise NotFoundError(f"flow {flow!r} does not exist; register it with `engine flows sync DIR` first")
    try:
        encoded = values.roundtrip(inputs or {})
    except values.UnrecordableValueError as exc:
        raise EngineError(f"inputs for schedule {name!r} cannot be recorded: {exc}") from None
    row = ScheduleRow(name, uuid.uuid4().hex, flow or "", cron, timezone, encoded, catch_up, False,
                      next_slot(cron, timezone, first), None, None, now, git)
    try:
        ScheduleStore(store).add(row)
    except ScheduleExistsError:
        raise EngineError(f"schedule {name!r} exists already; `engine schedules rm {name}` first") from None
    return info(row)


def listing(store: Store) -> list[ScheduleInfo]:
    return [info(row) for row in ScheduleStore(store).all()]


def remove(store: Store, name: str) -> None:
    if not ScheduleStore(store).remove(name):
        raise NotFoundError(f"no schedule {name!r}; `engine schedules ls` lists them")


def set_paused(store: Store, name: str, paused: bool, now: float) -> None:
    """Pause ``name`` (no slot fires), or resume it from its first slot after ``now``."""
    schedules = ScheduleStore(store)
    row = schedules.get(name)
    if row is None:
        raise NotFoundError(f"no schedule {name!r}; `engine schedules ls` lists them")
    schedules.set_paused(name, paused, row.next_slot if paused else next_slot(row.cron, row.timezone, now))


def execution_id(row: ScheduleRow, slot: int) -> str:
    """The id of the execution fired for ``slot``: the same in every worker that fires it."""
    return hashlib.sha256(f"schedule:{row.uid}:{slot}".encode()).hexdigest()[:16]


def slots_to_fire(row: ScheduleRow, now: float) -> list[int]:
    """The slots of ``row`` due at ``now`` that fire, oldest first (see the module's docstring)."""
    it = croniter(row.cron, datetime.fromtimestamp(int(now) + 1, _zone(row.timezone)))
    limit = MAX_CATCH_UP if row.catch_up == "all" else 1
    on_time: list[int] = []
    missed: list[int] = []
    while len(on_time) + len(missed) < MAX_CATCH_UP and len(missed) < limit:
        slot = int(it.get_prev(float))
        if slot < row.next_slot:
            break
        if now - slot <= LATE_AFTER:
            on_time.append(slot)
        elif row.catch_up == "none" or (row.catch_up == "latest" and on_time):
            break
        else:
            missed.append(slot)
    return sorted(on_time + missed)


#: Runs the git sync of a schedule for a slot this worker took.
SyncSlot = Callable[[ScheduleRow, int], object]


def fire_due(store: Store, now: float, sync: SyncSlot | None = None) -> tuple[int, float]:
    """Fire the slots due at ``now`` of every schedule; the number of executions
    created here, and when to look again (at most ``CHECK_EVERY`` seconds on).
    ``sync(row, slot)`` runs the git sync of a slot taken here (default: at once)."""
    schedules = ScheduleStore(store)
    fired = 0
    for row in schedules.due(now):
        try:
            if row.git is not None:
                _take(schedules, row, now, sync or (lambda r, slot: git_actions.sync_slot(store, r, slot)))
                continue
            fired += _fire(store, schedules, row, now)
        except (CroniterBadCronError, CroniterBadDateError, EngineError) as exc:
            log.error("schedule %s: %s; it does not fire until fixed (`engine schedules rm %s` and add it again)",
                      row.name, exc, row.name)
    due = schedules.next_due()
    return fired, min(now + CHECK_EVERY, due if due is not None else now + CHECK_EVERY)


def _fire(store: Store, schedules: ScheduleStore, row: ScheduleRow, now: float) -> int:
    flow = store.get_flow(row.flow)
    executions = []
    if flow is None:
        log.error("schedule %s: flow %r does not exist; its due slots are skipped (register the flow)",
                  row.name, row.flow)
    else:
        for slot in slots_to_fire(row, now):
            inputs = {**(row.input_value or {}), "schedule": {
                "name": row.name, "slot": _slot_text(slot, row.timezone), "slot_epoch": slot}}
            executions.append((slot, NewExecution(
                id=execution_id(row, slot), flow=row.flow, flow_version=flow.version, input_value=inputs,
                name=f"schedule {row.name}", project=flow.project)))
    if schedules.fire(row.name, row.next_slot, next_slot(row.cron, row.timezone, now), executions):
        return len(executions)
    return 0


def _take(schedules: ScheduleStore, row: ScheduleRow, now: float, sync: SyncSlot) -> None:
    """Take the latest due slot of git-sync schedule ``row`` and sync for it, if this
    worker's compare-and-set won it."""
    slots = slots_to_fire(row, now)
    taken = slots[-1] if slots else None
    if schedules.take_slot(row.name, row.next_slot, next_slot(row.cron, row.timezone, now), taken) and taken:
        sync(row, taken)
