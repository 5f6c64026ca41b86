"""The PostgreSQL limit: what the server itself costs, measured in the same run.

The ``postgres`` rows divide by these: a durable step cannot cost less than one
single-row INSERT and COMMIT through psycopg, nor a replay read less than the rows it
reads. Stored in :attr:`Context.references` under (metric, ``"n/a"``).
"""

from __future__ import annotations

import os
import time
from functools import partial

from benchmarks import pg_server
from benchmarks.harness import Context, Row, measure, register

COMMIT = "insert+commit (postgres)"
SCAN = "range scan (postgres)"
SUBJECT = "raw psycopg"
GROUP = "postgres"
ROW_BYTES = 200
SCHEMA = "CREATE TABLE events (key text NOT NULL, seq int NOT NULL, body bytea NOT NULL, PRIMARY KEY (key, seq))"


def commit_one_by_one(dsn: str, commits: int) -> float:
    """µs per commit: one ~200-byte row per transaction, a fresh table each run."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute("DROP TABLE IF EXISTS events")
        conn.execute(SCHEMA)
        conn.commit()
        body = os.urandom(ROW_BYTES)
        start = time.perf_counter()
        for seq in range(commits):
            conn.execute("INSERT INTO events VALUES (%s, %s, %s)", ("k", seq, body))
            conn.commit()
        return (time.perf_counter() - start) / commits * 1e6


def prepare_scan(dsn: str, rows: int) -> None:
    """``rows`` rows of key ``k`` between two other keys' rows."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute("DROP TABLE IF EXISTS events")
        conn.execute(SCHEMA)
        body = os.urandom(ROW_BYTES)
        with conn.cursor() as cur:
            for key in ("a", "k", "z"):
                cur.executemany("INSERT INTO events VALUES (%s, %s, %s)",
                                [(key, seq, body) for seq in range(rows)])
        conn.commit()


def scan(dsn: str, rows: int) -> float:
    """µs per row of ``SELECT seq, body ... WHERE key=%s ORDER BY seq`` on a fresh connection."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        start = time.perf_counter()
        found = conn.execute("SELECT seq, body FROM events WHERE key = %s ORDER BY seq", ("k",)).fetchall()
        elapsed = time.perf_counter() - start
    if len(found) != rows:
        raise RuntimeError(f"postgres range scan read {len(found)} rows, expected {rows}")
    return elapsed / rows * 1e6


@register("limit", group=GROUP, kind="reference")
def limit_postgres(ctx: Context) -> list[Row]:
    """psycopg 3 on its own connection to the benchmark's PostgreSQL server (see the notes:
    a throwaway cluster with fsync on unless `$ENGINE_BENCH_POSTGRES_DSN` names one), a table
    keyed (key, seq) holding ~200-byte bytea values. *insert+commit (postgres)*: 1,000
    (quick 300) transactions of one INSERT each, `INSERT` then `COMMIT` (two round trips,
    one WAL flush), µs per commit, a fresh table each run. *range scan (postgres)*:
    `SELECT seq, body ... WHERE key=%s ORDER BY seq` `fetchall()` of 10,000 rows of one key
    stored between two other keys' 10,000 rows, on a new connection each run (connect not
    timed), µs per row."""
    try:
        dsn = pg_server.fresh_database("limit")
    except Exception as exc:  # no server: the postgres rows cannot run at all
        ctx.note(f"PostgreSQL rows skipped: {exc}")
        return []
    ctx.note(f"postgres rows: {pg_server.describe()}")
    commits = ctx.size(1000, 300, 20)
    scanned = ctx.size(10_000, 10_000, 500)
    commit = measure(partial(commit_one_by_one, dsn, commits), ctx.runs)
    prepare_scan(dsn, scanned)
    scans = measure(partial(scan, dsn, scanned), ctx.runs)
    pg_server.drop_database(dsn)
    rows = [Row.of("limit", SUBJECT, "n/a", COMMIT, "µs", commit, kind="reference"),
            Row.of("limit", SUBJECT, "n/a", SCAN, "µs", scans, kind="reference")]
    for row in rows:
        ctx.references[(row.metric, row.durability)] = row
    return rows


def available(ctx: Context) -> bool:
    """Whether the limit reached a server (the other postgres rows need it)."""
    return ctx.reference(COMMIT, "n/a") is not None

