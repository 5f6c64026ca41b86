"""Schedules: a flow started (or a git sync run) at the slots of a cron expression.

Firing a slot is one transaction that moves the schedule's ``next_slot`` on, compared
and set against the slot the firing worker read, and creates the slot's executions.
Of several workers (processes, hosts) that see the same slot due, one moves it on; the
others change nothing. The executions' ids derive from (schedule, slot) as a second guard.
A git-sync schedule's slot is taken the same way (``take_slot``); the worker that took it
runs the sync and records how it ended (``record_sync``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import msgspec

from store.dialect import Conn, integrity_errors
from store import values
from store.git_actions import GitSource, SyncOutcome, decode_outcome, encode_outcome, source_columns, source_of
from store.model import NewExecution
from store.base import Store
from store.open import as_sql
from store.writes import insert_execution

_COLUMNS = ("name, uid, flow, cron, timezone, input_value, catch_up, paused, next_slot, last_slot, last_execution, "
            "created_at, git_repo, git_ref, git_path, last_sync")


class ScheduleRow(msgspec.Struct, frozen=True):
    """A schedule: ``flow`` with ``input_value`` at each slot of ``cron`` in ``timezone``.

    ``next_slot`` and ``last_slot`` are epoch seconds; ``catch_up`` says what fires for
    slots missed while no worker ran (``latest``, ``all`` or ``none``). With ``git`` set,
    each slot syncs the flows of that git source instead (``flow`` is ''), and
    ``last_sync`` says how the last sync ended.
    """

    name: str
    uid: str
    flow: str
    cron: str
    timezone: str
    input_value: Any
    catch_up: str
    paused: bool
    next_slot: int
    last_slot: int | None
    last_execution: str | None
    created_at: float
    git: GitSource | None = None
    last_sync: SyncOutcome | None = None


class ScheduleExistsError(ValueError):
    """A schedule of that name exists already (a ``ValueError``, so the store's
    transaction undoes the write and passes it on)."""


def _row(fields: Sequence[Any]) -> ScheduleRow:
    (name, uid, flow, cron, timezone, input_value, catch_up, paused, next_slot, last_slot, last_execution, created_at,
     git_repo, git_ref, git_path, last_sync) = fields
    return ScheduleRow(name, uid, flow, cron, timezone, values.decode(input_value), catch_up, bool(paused), next_slot,
                       last_slot, last_execution, created_at, source_of(git_repo, git_ref, git_path),
                       decode_outcome(last_sync))


class ScheduleStore:
    """Schedules in the engine's database."""

    def __init__(self, store: Store) -> None:
        self.store = as_sql(store, "schedules")

    def add(self, row: ScheduleRow) -> None:
        """Store a new schedule.

        Raises:
            ScheduleExistsError: a schedule named ``row.name`` exists.
        """

        def write(conn: Conn) -> None:
            try:
                conn.execute(f"INSERT INTO schedules ({_COLUMNS}) VALUES ({', '.join(['?'] * 16)})", (
                    row.name, row.uid, row.flow, row.cron, row.timezone, values.encode(row.input_value), row.catch_up,
                    int(row.paused), row.next_slot, row.last_slot, row.last_execution, row.created_at,
                    *source_columns(row.git), None))
            except integrity_errors():
                raise ScheduleExistsError(row.name) from None

        self.store.transaction(write)  # a ScheduleExistsError raised by write undoes it

    def get(self, name: str) -> ScheduleRow | None:
        found = self.store.read(lambda conn: conn.execute(
            f"SELECT {_COLUMNS} FROM schedules WHERE name = ?", (name,)).fetchone())
        return _row(found) if found else None

    def all(self) -> list[ScheduleRow]:
        """Every schedule, by name."""
        rows = self.store.read(lambda conn: conn.execute(f"SELECT {_COLUMNS} FROM schedules ORDER BY name").fetchall())
        return [_row(r) for r in rows]

    def due(self, now: float) -> list[ScheduleRow]:
        """The schedules not paused whose next slot is at or before ``now``."""
        rows = self.store.read(lambda conn: conn.execute(
            f"SELECT {_COLUMNS} FROM schedules WHERE paused = 0 AND next_slot <= ? ORDER BY next_slot",
            (now,)).fetchall())
        return [_row(r) for r in rows]

    def next_due(self) -> int | None:
        """The earliest next slot of the schedules not paused."""
        found = self.store.read(lambda conn: conn.execute(
            "SELECT min(next_slot) FROM schedules WHERE paused = 0").fetchone())
        return int(found[0]) if found and found[0] is not None else None

    def remove(self, name: str) -> bool:
        """Delete the schedule ``name`` (its executions stay); False when there is none."""
        return self.store.transaction(
            lambda conn: conn.execute("DELETE FROM schedules WHERE name = ?", (name,)).rowcount == 1)

    def set_paused(self, name: str, paused: bool, next_slot: int) -> bool:
        """Pause or resume ``name``, its next slot set to ``next_slot``; False when there is none."""
        return self.store.transaction(lambda conn: conn.execute(
            "UPDATE schedules SET paused = ?, next_slot = ? WHERE name = ?", (int(paused), next_slot, name)
        ).rowcount == 1)

    def fire(self, name: str, slot: int, next_slot: int, executions: Sequence[tuple[int, NewExecution]]) -> bool:
        """Move ``name`` on from ``slot`` (the next slot it had when read) to ``next_slot``
        and create ``executions`` (each with its slot), in one transaction; False, with
        nothing written, when another worker moved it on first (or it was paused or removed).
        """

        def write(conn: Conn) -> bool:
            last_slot, last_id = executions[-1][0] if executions else None, executions[-1][1].id if executions else None
            moved = conn.execute(
                "UPDATE schedules SET next_slot = ?, last_slot = coalesce(?, last_slot), "
                "last_execution = coalesce(?, last_execution) WHERE name = ? AND next_slot = ? AND paused = 0",
                (next_slot, last_slot, last_id, name, slot)).rowcount == 1
            if moved:
                at = time.time()
                for _, new in executions:
                    insert_execution(conn, new, at)  # an id fired before: IntegrityError undoes this write
            return moved

        try:
            return self.store.transaction(write)
        except integrity_errors():
            return False

    def take_slot(self, name: str, slot: int, next_slot: int, taken: int | None) -> bool:
        """Move the git-sync schedule ``name`` on from ``slot`` to ``next_slot``, its last
        slot now ``taken`` (None: none fires): True for the one worker whose compare-and-set
        won, which runs the sync; False when another moved it on first (or it was paused
        or removed)."""
        return self.store.transaction(lambda conn: conn.execute(
            "UPDATE schedules SET next_slot = ?, last_slot = coalesce(?, last_slot) "
            "WHERE name = ? AND next_slot = ? AND paused = 0", (next_slot, taken, name, slot)).rowcount == 1)

    def record_sync(self, name: str, uid: str, outcome: SyncOutcome) -> None:
        """Record how the git sync of schedule ``name`` ended, unless one of a later slot
        (another worker's) was recorded first, or the schedule was added anew under that
        name meanwhile (``uid`` tells them apart)."""

        def write(conn: Conn) -> None:
            found = conn.execute("SELECT last_sync FROM schedules WHERE name = ? AND uid = ?", (name, uid)).fetchone()
            before = decode_outcome(found[0]) if found else None
            if found and not (before and before.slot and outcome.slot and before.slot > outcome.slot):
                conn.execute("UPDATE schedules SET last_sync = ? WHERE name = ?", (encode_outcome(outcome), name))

        self.store.transaction(write)
