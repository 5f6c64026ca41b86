"""The engine's rows on PostgreSQL, beside SQLite's in the same tables (group ``postgres``).

Every shape runs on a fresh database of the benchmark's PostgreSQL server
(``benchmarks.pg_server``), in fresh ``engine_proc`` and ``engine worker`` processes, the
same commands and flows as the SQLite rows; ratios divide by the ``raw psycopg`` limit
rows of the same run. A crashed database is copied with ``CREATE DATABASE ... TEMPLATE``.
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks import pg_server
from benchmarks.engine_common import parked, run_proc, spawn_recover, workers
from benchmarks.engine_proc import FLOWS, read_marks
from benchmarks.engine_recovery import REPLAY_DELAY, two_point_slope
from benchmarks.engine_wake import HOLD, SETTLE, child_trial, message_trial, wait_until
from benchmarks.harness import Context, Row, Stats, percentile, register
from benchmarks.machine import CpuMeter
from benchmarks.raw_pg import COMMIT, GROUP, SCAN, available
from engine.api import Engine

SUBJECT = "engine, postgres"
PROCESSES = (1, 2, 4, 8)
#: Where a throughput row's median is kept for the DBOS rows' ratio (see ``pg_dbos``).
STEPS_KEY = "engine steps/s, {n} processes"


def _row(bench: str, metric: str, unit: str, samples: list[float], reference: Row | None = None,
         subject: str = SUBJECT) -> Row:
    return Row.of(bench, subject, "n/a", metric, unit, Stats.of(samples), "engine", reference)


def copy_database(source: str, label: str) -> str:
    """A copy of a crashed database (its killed sessions may take a moment to go)."""
    import psycopg

    target = pg_server.fresh_database(label)
    pg_server.drop_database(target)
    name, source_name = target.rsplit("/", 1)[1], source.rsplit("/", 1)[1]
    deadline = time.monotonic() + 30
    with psycopg.connect(pg_server.server_dsn(), autocommit=True) as conn:
        while True:
            try:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source_name}"')
                return target
            except psycopg.errors.ObjectInUse:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


@register("record", group=GROUP, kind="engine")
def pg_record(ctx: Context) -> list[Row]:
    """The SQLite row's shape (`engine_proc record`: one execution of 1,000 sequential
    trivial `this.step` calls per run, then 1,000 `this.log` calls and one step, after a
    warm-up) on a fresh PostgreSQL database. *per step*: handler's first line → line after
    the last step, divided by the steps (ratio: one raw psycopg insert+commit). *CPU per
    step*: the engine process's CPU over the same span (the server's is not included)."""
    if not available(ctx):
        return []
    dsn = pg_server.fresh_database("record")
    marks = ctx.scratch("pg-record") / "marks"
    out = run_proc("record", dsn, "FULL", marks, size=ctx.size(1000, 500, 20),
                   logs=ctx.size(1000, 1000, 50), runs=ctx.runs)["runs"]
    pg_server.drop_database(dsn)
    return [_row("record", "per step", "µs", [r["step_us"] for r in out], ctx.reference(COMMIT, "n/a")),
            _row("record", "CPU per step", "µs", [r["step_cpu_us"] for r in out]),
            _row("record", "this.log per call", "µs", [r["log_us"] for r in out])]


@register("replay", group=GROUP, kind="engine")
def pg_replay(ctx: Context) -> list[Row]:
    """The SQLite row's shape: an execution records K = 10, 1,000, 10,000 (quick 10, 1,000)
    trivial steps and parks on `this.sleep(0.2)`; its process is SIGKILLed. Each run copies
    the crashed database (`CREATE DATABASE ... TEMPLATE`) and starts a fresh `engine_proc
    recover` process (concurrency 1). *dispatch*: t0 (just before Worker.run()) → the
    handler's first line; *slope*: (t(Kmax) − t(Kmin)) / (Kmax − Kmin) of start → past step
    K, µs per recorded event, loading and decoding included (ratio: one row of the raw
    range scan)."""
    if not available(ctx):
        return []
    ks = [5, 50] if ctx.tiny else [10, 1000] if ctx.quick else [10, 1000, 10_000]
    directory = ctx.scratch("pg-replay")
    runs: dict[int, list[dict[str, float]]] = {}
    for k in ks:
        crashed = pg_server.fresh_database(f"replay_k{k}")
        with parked("replay-prepare", crashed, "FULL", size=k, delay=REPLAY_DELAY) as lines:
            due = float(next(ln for ln in lines if ln.startswith("DUE ")).split()[1])
        time.sleep(max(0.0, due - time.time()) + 0.01)
        runs[k] = []
        for i in range(ctx.runs):
            copy = copy_database(crashed, f"replay_k{k}_{i}")
            marks_file = directory / f"k{k}-run{i}-marks"
            _, out = spawn_recover(copy, "FULL", marks_file, concurrency=1)
            (marks,) = read_marks(marks_file).values()
            runs[k].append({"t0": out["t0"], "entered": marks["entered"][0][0],
                            "replayed": marks["replayed"][0][0]})
            pg_server.drop_database(copy)
        pg_server.drop_database(crashed)
    rows = [_row("replay", f"dispatch: start → entered, K={min(ks)}", "ms",
                 [(r["entered"] - r["t0"]) * 1e3 for r in runs[min(ks)]])]
    rows += [_row("replay", f"start → past step {k}", "ms",
                  [(r["replayed"] - r["t0"]) * 1e3 for r in runs[k]]) for k in ks]
    slopes = [two_point_slope(ks, {k: runs[k][i]["replayed"] - runs[k][i]["t0"] for k in ks})
              for i in range(ctx.runs)]
    rows.append(_row("replay", "slope per recorded step", "µs", slopes, ctx.reference(SCAN, "n/a")))
    return rows


def _wake_rows(subject: str, latencies: list[float], waker: str) -> list[Row]:
    ms = [s * 1e3 for s in latencies]
    return [Row("wake", subject, "n/a", f"p{q}: {waker} last line → parent", "ms",
                percentile(ms, q), min(ms), max(ms), len(ms), "engine") for q in (50, 99)]


@register("wake", group=GROUP, kind="engine")
def pg_wake(ctx: Context) -> list[Row]:
    """The SQLite rows' shapes on PostgreSQL, 50 trials (quick 10): *child on another
    process*: two `engine worker --concurrency 1` processes; the parent holds its worker's
    only slot 30 ms after creating the child, so the other worker runs the child, whose
    end commit hands the woken parent to the child's worker (trials where the pids show
    one worker ran both are dropped). *message from another process*: this process
    answers the parent's `this.message` (store.answer_message), and the parent's worker
    learns of it through LISTEN/NOTIFY. Latency: the waker's last line (time.time() just
    before its durable write) → the parent's next line."""
    if not available(ctx):
        return []
    trials = ctx.size(50, 10, 3)
    dsn = pg_server.fresh_database("wake")
    engine = Engine(dsn)
    engine.sync_flows(FLOWS)
    two: list[float] = []
    dropped = 0
    try:
        with workers(dsn, "FULL", 2, concurrency=1):
            for _ in range(2):
                child_trial(engine, HOLD, HOLD + SETTLE)
            while len(two) < trials and dropped < trials:
                out = child_trial(engine, HOLD, HOLD + SETTLE)
                if out["parked_pid"] != out["child_pid"] == out["woke_pid"]:
                    two.append(out["latency"])
                else:
                    dropped += 1
            message_trial(engine)
            message = [message_trial(engine)["latency"] for _ in range(trials)]
    finally:
        engine.close()
        pg_server.drop_database(dsn)
    if dropped:
        ctx.note(f"postgres wake, child on another process: {dropped} trial(s) dropped")
    return (_wake_rows(f"{SUBJECT}, child on another process", two, "child's")
            + _wake_rows(f"{SUBJECT}, message from another process", message, "answerer's"))


@register("children", group=GROUP, kind="engine")
def pg_children(ctx: Context) -> list[Row]:
    """The SQLite row's shape (`engine_proc children`, an embedded worker of concurrency
    16; a parent starts 200 children with `wait=False` and waits for them all) on a fresh
    PostgreSQL database: *total* from the parent's first line to its line after the wait;
    *transactions per child* counts the store's group-commit batches."""
    if not available(ctx):
        return []
    dsn = pg_server.fresh_database("children")
    size = ctx.size(200, 200, 10)
    out = run_proc("children", dsn, "FULL", ctx.scratch("pg-children") / "marks", size=size,
                   runs=ctx.runs)
    pg_server.drop_database(dsn)
    totals = [r["total_s"] for r in out["runs"]]
    return [_row("children", f"{size} children, total", "ms", [t * 1e3 for t in totals]),
            _row("children", f"{size} children, per child", "µs", [t / size * 1e6 for t in totals],
                 ctx.reference(COMMIT, "n/a")),
            _row("children", f"{size} children, transactions per child", "",
                 [r["transactions"] / size for r in out["runs"]])]


def throughput_run(engine: Engine, executions: int, steps: int, marks: Path) -> float:
    """Start ``executions`` bench_record executions of ``steps`` steps; steps per second."""
    ids = [engine.start("bench_record", {"steps": steps}) for _ in range(executions)]
    wait_until(lambda: all(s.startswith("ENDED") for s in engine.store.statuses(ids).values()),
               "throughput executions to end", timeout=600)
    found = read_marks(marks)
    first = min(found[i]["entered"][0][0] for i in ids)
    last = max(found[i]["stepped"][0][0] for i in ids)
    return executions * steps / (last - first)


@register("throughput", group=GROUP, kind="engine")
def pg_throughput(ctx: Context) -> list[Row]:
    """32 executions of 300 (quick 100) sequential trivial steps each, started from this
    process on a fresh PostgreSQL database served by 1, 2, 4 and 8 `engine worker
    --concurrency 16` processes (a warm-up batch first, then one batch per run).
    *durable steps/s*: all steps / (last handler past its steps − first handler entered)
    (ratio: raw single-connection commits per second). *machine CPU busy*: share of both
    cores busy (/proc/stat) over the runs, the server's and this process's included: near
    100% means the cores bind, not the server's commit rate."""
    if not available(ctx):
        return []
    executions, steps = 32, ctx.size(300, 100, 10)
    reference = ctx.reference(COMMIT, "n/a")
    per_second = None if reference is None else Row(
        "limit", reference.subject, "n/a", "commits/s", "/s", 1e6 / reference.median,
        1e6 / reference.max, 1e6 / reference.min, reference.n, "reference")
    rows: list[Row] = []
    busy_at: dict[int, float] = {}
    for count in PROCESSES if not ctx.tiny else (1, 2):
        dsn = pg_server.fresh_database(f"throughput_{count}")
        engine = Engine(dsn)
        engine.sync_flows(FLOWS)
        marks = ctx.scratch(f"pg-throughput-{count}") / "marks"
        try:
            with workers(dsn, "FULL", count, concurrency=16, marks=marks):
                throughput_run(engine, executions, 10, marks)
                meter = CpuMeter()
                rates = [throughput_run(engine, executions, steps, marks) for _ in range(ctx.runs)]
                busy = meter.busy_percent()
        finally:
            engine.close()
            pg_server.drop_database(dsn)
        row = _row("throughput", f"durable steps/s, {count} process{'es' if count > 1 else ''}", "/s",
                   rates, per_second)
        ctx.references[(STEPS_KEY.format(n=count), "n/a")] = row
        rows += [row, _row("throughput", f"machine CPU busy, {count} processes", "%", [busy])]
        busy_at[count] = busy
    rates_at = {n: ctx.references[(STEPS_KEY.format(n=n), "n/a")] for n in busy_at}
    for count in list(busy_at)[1:]:
        ratio = rates_at[count].median / rates_at[1].median
        rows.append(_row("throughput", f"steps/s, {count} processes ÷ 1 process", "×", [ratio]))
    best = max(rates_at, key=lambda n: rates_at[n].median)
    bound = ("the cores (both busy)" if busy_at[best] >= 90 else
             "not the cores: the server's commit path or the workers' waits")
    ctx.note(f"postgres throughput peaks at {best} process(es), {rates_at[best].median:,.0f} steps/s, "
             f"machine CPU {busy_at[best]:.0f}% busy: bound by {bound}")
    return rows
