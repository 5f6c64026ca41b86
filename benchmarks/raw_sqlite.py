"""The limit: what SQLite itself costs on this disk, measured in the same run.

Every other table divides by these rows: an engine cannot record a step durably in less
than one commit, nor replay a history faster than it can read it back. The rows are stored
in :attr:`Context.references` under (metric, durability), using the constants below.
"""

from __future__ import annotations

import os
import sqlite3
import time
from functools import partial
from pathlib import Path

from benchmarks.harness import Context, Durability, Row, Stats, measure, register

COMMIT = "commit (1 row)"
BATCH = "batched insert"
SCAN = "range scan"

SUBJECT = "raw sqlite"
ROW_BYTES = 200
SCHEMA = """
CREATE TABLE events (
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (key, seq)
) WITHOUT ROWID
"""


def connect(path: Path, synchronous: str) -> sqlite3.Connection:
    """Autocommit connection in WAL mode at the given ``synchronous`` level."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


def fresh_db(directory: Path, synchronous: str) -> sqlite3.Connection:
    """A new database file with the events table."""
    path = directory / f"limit-{time.monotonic_ns()}.sqlite"
    conn = connect(path, synchronous)
    conn.execute(SCHEMA)
    return conn


def commit_one_by_one(directory: Path, synchronous: str, commits: int) -> float:
    """µs per commit, one ~200-byte row per ``BEGIN IMMEDIATE``/``COMMIT``."""
    conn = fresh_db(directory, synchronous)
    body = os.urandom(ROW_BYTES)
    start = time.perf_counter()
    for seq in range(commits):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO events VALUES (?, ?, ?)", ("k", seq, body))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed / commits * 1e6


def insert_batch(directory: Path, synchronous: str, rows: int) -> float:
    """µs per row, all ~200-byte rows in one ``BEGIN IMMEDIATE`` transaction."""
    conn = fresh_db(directory, synchronous)
    body = os.urandom(ROW_BYTES)
    start = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO events VALUES (?, ?, ?)", (("k", seq, body) for seq in range(rows))
    )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed / rows * 1e6


def prepare_scan(directory: Path, rows: int) -> Path:
    """A database holding ``rows`` rows of key ``k`` between two other keys' rows."""
    path = directory / "scan.sqlite"
    conn = connect(path, "NORMAL")
    conn.execute(SCHEMA)
    body = os.urandom(ROW_BYTES)
    conn.execute("BEGIN IMMEDIATE")
    for key in ("a", "k", "z"):
        conn.executemany(
            "INSERT INTO events VALUES (?, ?, ?)", ((key, seq, body) for seq in range(rows))
        )
    conn.execute("COMMIT")
    conn.close()
    return path


def scan(path: Path, rows: int) -> float:
    """µs per row of ``SELECT ... WHERE key=? ORDER BY seq`` on a fresh connection."""
    conn = connect(path, "NORMAL")
    start = time.perf_counter()
    found = conn.execute(
        "SELECT seq, body FROM events WHERE key = ? ORDER BY seq", ("k",)
    ).fetchall()
    elapsed = time.perf_counter() - start
    conn.close()
    if len(found) != rows:
        raise RuntimeError(f"range scan read {len(found)} rows, expected {rows}")
    return elapsed / rows * 1e6


def _row(durability: Durability, metric: str, stats: Stats) -> Row:
    return Row.of("limit", SUBJECT, durability, metric, "µs", stats, kind="reference")


@register("limit", group="limit", kind="reference")
def limit(ctx: Context) -> list[Row]:
    """Python's sqlite3 with isolation_level=None on a file in the scratch directory (same
    disk as the repository), WAL mode, a WITHOUT ROWID table keyed (key, seq) holding
    ~200-byte blobs. *commit (1 row)*: 1,000 (quick 200) transactions of one INSERT each,
    `BEGIN IMMEDIATE`/`COMMIT`, µs per commit, at synchronous=FULL and NORMAL.
    *batched insert*: 10,000 (quick 2,000) INSERTs in one transaction, µs per row, commit
    included. *range scan*: `SELECT seq, body ... WHERE key=? ORDER BY seq ... fetchall()`
    of 10,000 rows of one key stored between two other keys' 10,000 rows, on a fresh
    connection each run (cold SQLite cache, warm OS cache), µs per row. Each figure is the
    median of the runs; every commit and insert run starts on a fresh database file."""
    directory = ctx.scratch("limit")
    commits = ctx.size(1000, 200, 20)
    batch = ctx.size(10_000, 2_000, 200)
    scanned = ctx.size(10_000, 10_000, 500)
    rows: list[Row] = []
    for level in ("FULL", "NORMAL"):
        commit = partial(commit_one_by_one, directory, level, commits)
        insert = partial(insert_batch, directory, level, batch)
        rows.append(_row(level, COMMIT, measure(commit, ctx.runs)))
        rows.append(_row(level, BATCH, measure(insert, ctx.runs)))
    scan_db = prepare_scan(directory, scanned)
    rows.append(_row("n/a", SCAN, measure(partial(scan, scan_db, scanned), ctx.runs)))
    for row in rows:
        ctx.references[(row.metric, row.durability)] = row
    return rows
