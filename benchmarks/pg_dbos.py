"""The peer on its home backend: DBOS Transact on the same PostgreSQL server as the
engine's ``postgres`` rows (group ``postgres``), each shape on a fresh database, in
fresh ``benchmarks._dbos_worker`` processes. Skipped with a note without ``import dbos``.
"""

from __future__ import annotations

import subprocess
import time

from benchmarks import pg_server
from benchmarks.harness import Context, Row, Stats, register
from benchmarks import pg_targets  # noqa: F401  (registers the targets)
from benchmarks.pg_engine import PROCESSES, STEPS_KEY
from benchmarks.peer_dbos import FAST_POLL, REPO, WORKER, available, run_worker
from benchmarks.raw_pg import COMMIT, GROUP
from benchmarks.raw_pg import available as server_available

SUBJECT = "dbos, postgres"


def _row(bench: str, metric: str, unit: str, samples: list[float], reference: Row | None = None,
         subject: str = SUBJECT) -> Row:
    return Row.of(bench, subject, "n/a", metric, unit, Stats.of(samples), "peer", reference)


def _ready(ctx: Context) -> bool:
    return server_available(ctx) and available(ctx)


@register("record", group=GROUP, kind="peer")
def pg_dbos_record(ctx: Context) -> list[Row]:
    """The SQLite DBOS row's shape (one @DBOS.workflow of 1,000, quick 200, sequential
    trivial @DBOS.step calls in the worker's main thread after a warm-up) with DBOS's
    system database on a fresh PostgreSQL database (ratio: one raw psycopg insert+commit)."""
    if not _ready(ctx):
        return []
    dsn = pg_server.fresh_database("dbos_record")
    out = run_worker("record", dsn, "FULL", size=ctx.size(1000, 200, 20), runs=ctx.runs)  # type: ignore[arg-type]
    pg_server.drop_database(dsn)
    return [_row("record", "per step", "µs", out["wall_us"], ctx.reference(COMMIT, "n/a")),
            _row("record", "CPU per step", "µs", out["cpu_us"])]


@register("wake", group=GROUP, kind="peer")
def pg_dbos_wake(ctx: Context) -> list[Row]:
    """The SQLite DBOS row's shape on PostgreSQL: a parent workflow starts a child
    (DBOS.start_workflow) and waits in DBOS.recv; the child ends with DBOS.send, which on
    PostgreSQL reaches the parent through DBOS's LISTEN/NOTIFY listener (poll set to
    0.01 s as a fallback). 50 trials (quick 10); child and parent run in one process
    (DBOS has no claim of another process's workflow to force it elsewhere)."""
    if not _ready(ctx):
        return []
    dsn = pg_server.fresh_database("dbos_wake")
    trials = ctx.size(50, 10, 3)
    out = run_worker("wake", dsn, "FULL", size=trials, via="recv", poll=FAST_POLL, jitter=FAST_POLL)  # type: ignore[arg-type]
    pg_server.drop_database(dsn)
    ms = sorted(s * 1e3 for s in out["latencies_s"])
    from benchmarks.harness import percentile

    return [Row("wake", f"{SUBJECT}, recv (one process)", "n/a", f"p{q}: child's last line → parent",
                "ms", percentile(ms, q), ms[0], ms[-1], len(ms), "peer") for q in (50, 99)]


@register("children", group=GROUP, kind="peer")
def pg_dbos_children(ctx: Context) -> list[Row]:
    """The SQLite DBOS row's shape on PostgreSQL: a parent workflow starts 200 trivial
    child workflows (DBOS.start_workflow) and waits for each result."""
    if not _ready(ctx):
        return []
    dsn = pg_server.fresh_database("dbos_children")
    size = ctx.size(200, 200, 10)
    totals = run_worker("children", dsn, "FULL", size=size, runs=ctx.runs)["total_s"]  # type: ignore[arg-type]
    pg_server.drop_database(dsn)
    return [_row("children", f"{size} children, total", "ms", [t * 1e3 for t in totals]),
            _row("children", f"{size} children, per child", "µs", [t / size * 1e6 for t in totals],
                 ctx.reference(COMMIT, "n/a"))]


def _throughput(dsn: str, processes: int, workflows: int, steps: int) -> float:
    """One run: ``processes`` DBOS processes start their workflows at one agreed time."""
    import json

    start_at = time.time() + 4.0 + processes  # after every process has launched DBOS
    procs = [subprocess.Popen([*WORKER, "throughput", f"--db={dsn}", "--sync=FULL",
                               f"--size={steps}", f"--workflows={workflows}", f"--start-at={start_at}"],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(processes)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        lines = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
        if not lines:
            raise RuntimeError(f"DBOS throughput worker exited {proc.returncode}: {err[-2000:]}")
        results.append(json.loads(lines[0].removeprefix("RESULT ")))
    if min(r["start"] for r in results) < start_at - 0.01:
        raise RuntimeError("a DBOS throughput worker started late; raise the start delay")
    span = max(r["end"] for r in results) - min(r["start"] for r in results)
    return sum(r["steps"] for r in results) / span


@register("throughput", group=GROUP, kind="peer")
def pg_dbos_throughput(ctx: Context) -> list[Row]:
    """The engine's postgres throughput shape for DBOS: 32 workflows of 300 (quick 100)
    sequential trivial steps in all, split evenly over 1, 2, 4 and 8 processes that each
    launch DBOS (own executor id) on one fresh PostgreSQL database, wait for an agreed
    start time, DBOS.start_workflow their share and wait for the results. *durable
    steps/s*: all steps / (last process done − first process started). *engine ÷ dbos*:
    the engine's row with the same number of processes divided by this one."""
    if not _ready(ctx):
        return []
    steps = ctx.size(300, 100, 10)
    rows: list[Row] = []
    for count in PROCESSES if not ctx.tiny else (1, 2):
        dsn = pg_server.fresh_database(f"dbos_throughput_{count}")
        run_worker("record", dsn, "FULL", size=1, runs=1)  # type: ignore[arg-type]  # creates the schema once
        rates = [_throughput(dsn, count, 32 // count, steps) for _ in range(ctx.runs)]
        pg_server.drop_database(dsn)
        label = f"durable steps/s, {count} process{'es' if count > 1 else ''}"
        rows.append(_row("throughput", label, "/s", rates))
        engine = ctx.reference(STEPS_KEY.format(n=count), "n/a")
        if engine is not None:
            rows.append(Row("throughput", "engine ÷ dbos, postgres", "n/a",
                            f"steps/s, {count} process{'es' if count > 1 else ''}", "×",
                            engine.median / Stats.of(rates).median, engine.min / max(rates),
                            engine.max / min(rates), len(rates), "peer"))
    return rows
