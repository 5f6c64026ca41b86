"""A PostgreSQL batch of plain step commits in three round trips, however many it holds.

A plain step commit only appends events to a running execution: the shared statement
checks its fence and moves its ``last_seq`` (``store.writes.FENCED_APPEND``), waiting for
the server's answer, so a batch of N such commits waited for N answers in turn. Here one
statement reads (and locks, ``FOR UPDATE``, in id order) the rows of every execution in the
batch first, with the clock; each commit's fenced append is then answered from those rows,
which no other transaction can change until this one ends, and the move is sent without
waiting. Anything else in the batch (a status, a wait, a child...) takes the ordinary path.
A transaction of one commit (an end, a wait, a child...) reads its row the same way: its
fenced append is its first statement on that row, so nothing before it can change it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from store.model import UNSET, Commit
from store.writes import FENCED_APPEND

_READ = (
    "SELECT id, fence, status, pause_requested, lease_expires, last_seq FROM executions "
    "WHERE id = ANY(%s) ORDER BY id FOR UPDATE"
)


def plain(items: Sequence[Any]) -> bool:
    """Whether every item is a commit that only appends events under a lease."""
    return all(
        type(c) is Commit and c.fence is not None and c.events and c.status is None and c.wait is None
        and c.wait_message is None and c.output_value is UNSET and not c.creates and not c.start
        and not c.cancel and not c.settings and not c.messages and not c.connectors and not c.relocate
        and c.wake_at is None
        for c in items
    )


def answerable(items: Sequence[Any]) -> bool:
    """Whether the fenced appends of ``items`` can be answered from rows read first: a
    batch of plain step commits, or one commit that appends events under a lease."""
    if len(items) == 1:
        c = items[0]
        return type(c) is Commit and c.fence is not None and bool(c.events)
    return plain(items)


class _Answer:
    """A cursor whose rows and row count are already known."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows, self.rowcount = rows, rowcount

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return list(self._rows)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


class KnownRows:
    """The batch's execution rows, read once; answers the two statements it knows."""

    def __init__(self, raw: Any, ids: list[str]) -> None:
        self._raw = raw
        self._cursor = raw.execute(_READ, (sorted(set(ids)),))  # fetched with the clock's answer
        self._rows: dict[str, list[Any]] | None = None

    def _known(self) -> dict[str, list[Any]]:
        if self._rows is None:
            self._rows = {r[0]: list(r[1:]) for r in self._cursor.fetchall()}
        return self._rows

    def answer(self, sql: str, parameters: Any) -> _Answer | None:
        """The result of ``sql`` if it is a fenced append these rows answer; None to run
        it as usual (the ordinary statement then finds no row: the lease was lost)."""
        if sql != FENCED_APPEND:
            return None
        new, eid, fence, expected = parameters
        row = self._known().get(eid)
        if row is None or row[0] != fence or row[1] != "RUNNING" or row[4] != expected:
            return None
        self._raw.execute("UPDATE executions SET last_seq = %s WHERE id = %s", (new, eid))
        row[4] = new
        return _Answer([(row[2], row[3])], 1)
