"""``engine db copy SRC DST``: move every row the engine keeps from one database to
another (SQLite or PostgreSQL at either end) and prove the copy matches.

The copy holds SRC's write lock from the lease check to the end of the verification
(``store.copy_ends``), so no worker commits to SRC meanwhile, and refuses to start while
a worker holds a lease that has not expired: every execution is copied at rest. DST
must be empty; it is written in one transaction (a failed copy leaves it empty), then
compared with SRC (``store.copy_verify``). Rows keep their values: seqs, fences,
statuses, leases; only the times that are compared with a clock (a timer, a lease
expiry, a wait deadline) are moved by the difference between the clocks the two
databases keep them on (PostgreSQL keeps them on the server's, SQLite on the host's).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import msgspec

from store.copy_ends import CopyEnd, open_end, same_database
from store.copy_verify import difference
from store.errors import StoreError
from store.pg_url import without_password
from store.schema import TABLES_DDL

#: Every table the engine keeps (declared once, in ``store.schema``), and the full-text index.
TABLES: tuple[str, ...] = (*re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", TABLES_DDL), "search_text")

#: Columns whose times are compared with the database's clock.
_ON_CLOCK = {"executions": ("wake_at", "lease_expires"), "waits": ("deadline",)}

#: How the summary names the rows of a table: (one, many); tables absent are not named.
_NOUNS = {
    "executions": ("execution", "executions"), "events": ("event", "events"), "waits": ("wait", "waits"),
    "wait_targets": ("wait target", "wait targets"), "dependencies": ("dependency", "dependencies"),
    "messages": ("message", "messages"), "settings": ("setting", "settings"),
    "connectors": ("connector", "connectors"), "api_tokens": ("API token", "API tokens"),
    "webhooks": ("webhook", "webhooks"), "schedules": ("schedule", "schedules"),
    "flow_origins": ("flow origin", "flow origins"), "search_text": ("search entry", "search entries"),
}


class CopyReport(msgspec.Struct, frozen=True):
    """What a copy did: rows per table, from where to where."""

    source: str
    target: str
    copied: dict[str, int]
    verified: bool

    def summary(self) -> str:
        """``copied 2 flows (3 versions), 5 executions, ... from X to Y; verified``."""
        n = self.copied
        parts = [f"{_count(n['flows'], 'flow', 'flows')} ({_count(n['flow_versions'], 'version', 'versions')})"]
        parts += [_count(n[t], *_NOUNS[t]) for t in _NOUNS if n[t] or t in ("executions", "events")]
        return f"copied {', '.join(parts)} from {self.source} to {self.target}; verified"


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def copy_store(src_url: str, dst_url: str) -> CopyReport:
    """Copy every row of the database ``src_url`` into the empty database ``dst_url``
    (both ``--db`` values: a SQLite path or URL, or ``postgresql://...``), then verify.

    Raises:
        StoreError: a one-line reason: the same database twice, SRC missing, a worker
            holds a lease on SRC, DST not empty, a database error, or a copy that does
            not match SRC (DST then holds it: drop it and copy again).
    """
    if same_database(src_url, dst_url):
        raise StoreError(f"cannot copy {without_password(src_url)} onto itself; give another database as DST")
    with _ends(src_url, dst_url, dst_must_exist=False) as (src, dst):
        src.begin(lock=True, tables=TABLES)
        _refuse_leases(src)
        dst.begin(lock=True, tables=TABLES)
        _refuse_rows(dst)
        shift = dst.clock_offset() - src.clock_offset()
        copied = {table: _copy_table(src, dst, table, shift) for table in TABLES}
        dst.commit()
        dst.begin(lock=True, tables=TABLES)
        _verify(src, dst)
        return CopyReport(src.where, dst.where, copied, True)


def verify_copy(src_url: str, dst_url: str) -> None:
    """Compare the database ``dst_url`` with ``src_url`` as ``copy_store`` does after
    copying: a ``StoreError`` naming the first difference, if any."""
    with _ends(src_url, dst_url, dst_must_exist=True) as (src, dst):
        src.begin(lock=False, tables=TABLES)
        dst.begin(lock=False, tables=TABLES)
        _verify(src, dst)


@contextmanager
def _ends(src_url: str, dst_url: str, *, dst_must_exist: bool) -> Iterator[tuple[CopyEnd, CopyEnd]]:
    """SRC and DST opened (SRC must exist), both closed on exit, whatever fails
    (closing undoes what is not committed)."""
    with ExitStack() as opened:
        src = open_end(src_url, must_exist=True)
        opened.callback(src.close)
        dst = open_end(dst_url, must_exist=dst_must_exist)
        opened.callback(dst.close)
        yield src, dst


def _verify(src: CopyEnd, dst: CopyEnd) -> None:
    found = difference(src, dst, TABLES)
    if found is not None:
        raise StoreError(
            f"the copy in {dst.where} does not match {src.where}: {found}; do not use it: "
            f"drop {dst.where} and copy again"
        )


def _refuse_leases(src: CopyEnd) -> None:
    now = src.clock_offset() + time.time()
    leased = list(src.rows(
        "SELECT id, lease_owner FROM executions WHERE status = 'RUNNING' AND lease_expires > ? ORDER BY id", (now,)))
    if leased:
        shown = ", ".join(f"{eid} (worker {owner})" for eid, owner in leased[:5])
        more = f" and {len(leased) - 5} more" if len(leased) > 5 else ""
        raise StoreError(
            f"cannot copy {src.where}: workers hold leases on {len(leased)} running execution(s): {shown}{more}; "
            "stop every worker on it (Ctrl-C hands their executions back) and copy again"
        )


def _refuse_rows(dst: CopyEnd) -> None:
    full = [table for table in TABLES if dst.one(f"SELECT 1 FROM {table} LIMIT 1") is not None]
    if full:
        raise StoreError(
            f"cannot copy into {dst.where}: it is not empty (it holds {', '.join(full)}); copy into a new, "
            "empty database (a new file path, or one made with createdb)"
        )


def _copy_table(src: CopyEnd, dst: CopyEnd, table: str, shift: float) -> int:
    """Stream ``table``'s rows from ``src`` into ``dst``; returns how many."""
    columns = src.columns(table)
    if set(columns) != set(dst.columns(table)):
        raise StoreError(
            f"cannot copy table {table}: its columns differ between {src.where} and {dst.where}; "
            "open both with this engine's version first (any command migrates them)"
        )
    moved = [columns.index(c) for c in _ON_CLOCK.get(table, ())] if shift else []
    counted = [0]

    def rows() -> Iterator[Sequence[Any]]:
        for row in src.rows(f"SELECT {', '.join(columns)} FROM {table}"):
            counted[0] += 1
            if moved:
                row = [v + shift if i in moved and v is not None else v for i, v in enumerate(row)]
            yield row

    dst.insert(table, columns, rows())
    return counted[0]
