"""Whether a copy holds what its source holds: the same number of rows in every table,
and for every execution the same state (status, fence, last seq) and the same event log
(a digest of each event's seq, kind and body bytes). Both sides are read in id order,
in batches, and compared as they stream: memory does not grow with the log."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from store.copy_ends import CopyEnd

#: Every event, in the order of its execution's log.
_EVENTS = "SELECT execution_id, seq, kind, body FROM events ORDER BY execution_id, seq"

#: What decides whether and where an execution goes on.
_STATES = "SELECT id, status, fence, last_seq FROM executions ORDER BY id"


def event_digests(rows: Iterable[Sequence[Any]]) -> Iterator[tuple[str, int, str]]:
    """(execution id, number of events, digest of its log) per execution, from the rows
    of ``_EVENTS``."""
    for execution_id, events in itertools.groupby(rows, key=lambda row: row[0]):
        digest, count = hashlib.sha256(), 0
        for _, seq, kind, body in events:
            data = bytes(body)
            digest.update(f"{int(seq)}\0{kind}\0{len(data)}\0".encode())
            digest.update(data)
            count += 1
        yield str(execution_id), count, digest.hexdigest()


def _counts(end: CopyEnd, tables: Sequence[str]) -> list[tuple[str, int]]:
    return [(table, int(end.one(f"SELECT count(*) FROM {table}")[0])) for table in tables]


def difference(src: CopyEnd, dst: CopyEnd, tables: Sequence[str]) -> str | None:
    """The first difference between ``src`` and ``dst`` (a phrase), or None."""
    for (table, had), (_, has) in zip(_counts(src, tables), _counts(dst, tables)):
        if had != has:
            return f"table {table} has {had} rows in {src.where} but {has} in {dst.where}"
    for a, b in itertools.zip_longest(src.rows(_STATES), dst.rows(_STATES)):
        if a is None or b is None or tuple(a) != tuple(b):
            eid = (a or b)[0]
            return f"execution {eid} is {_state(a)} in {src.where} but {_state(b)} in {dst.where}"
    for x, y in itertools.zip_longest(event_digests(src.rows(_EVENTS)), event_digests(dst.rows(_EVENTS))):
        if x != y:
            eid = (x or y)[0]
            return (f"the event log of execution {eid} differs: {_log(x)} in {src.where}, {_log(y)} in {dst.where}")
    return None


def _state(row: Sequence[Any] | None) -> str:
    return "missing" if row is None else f"{row[1]} (fence {row[2]}, last seq {row[3]})"


def _log(found: tuple[str, int, str] | None) -> str:
    return "no events" if found is None else f"{found[1]} events with digest {found[2][:12]}"
