"""A PostgreSQL batch of plain step commits in three round trips, however many it holds.

A plain step commit only appends events to a running execution: the shared statements
would read its fence and then move its ``last_seq``, each waiting for the server's answer
in turn, so a batch of N such commits waited for 2N answers. Here one statement reads (and
locks, ``FOR UPDATE``, in id order) the rows of every execution in the batch first; the
fence check and the ``last_seq`` move of each commit are then answered from those rows,
which no other transaction can change until this one ends, and the move is sent without
waiting. Anything else in the batch (a status, a wait, a child...) takes the ordinary path.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from store.model import UNSET, Commit
from store.writes import FENCE_CHECK, MOVE_LAST_SEQ

_READ = "SELECT id, fence, status, pause_requested, last_seq FROM executions WHERE id = ANY(%s) ORDER BY id FOR UPDATE"


def plain(items: Sequence[Any]) -> bool:
    """Whether every item is a commit that only appends events under a lease."""
    return all(
        type(c) is Commit and c.fence is not None and c.events and c.status is None and c.wait is None
        and c.wait_message is None and c.output_value is UNSET and not c.creates and not c.start
        and not c.cancel and not c.settings and not c.messages and not c.connectors and not c.relocate
        and c.wake_at is None
        for c in items
    )


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
        """The result of ``sql`` if it is the fence check or a ``last_seq`` move these rows
        answer; None to run it as usual."""
        if sql == FENCE_CHECK:
            row = self._known().get(parameters[0])
            return _Answer([] if row is None else [tuple(row[:3])], 0 if row is None else 1)
        if sql == MOVE_LAST_SEQ:
            new, eid, expected = parameters
            row = self._known().get(eid)
            if row is None or row[3] != expected:
                return None  # the ordinary statement finds no row: the lease was lost
            self._raw.execute("UPDATE executions SET last_seq = %s WHERE id = %s", (new, eid))
            row[3] = new
            return _Answer([], 1)
        return None
