"""The engine's rows for long-running workers: wake-up latency and idle cost.

Both run real ``engine worker`` processes (the console script) on a database in the
scratch directory; this benchmark process starts executions, answers messages and reads
results through its own Engine, as a user's script or the CLI would.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.engine_common import GROUP, levels, row, run_proc, workers
from benchmarks.engine_proc import FLOWS
from benchmarks.harness import Context, Durability, Row, Stats, percentile, register
from benchmarks.raw_sqlite import ROW_BYTES, fresh_db
from benchmarks.raw_sqlite import SUBJECT as RAW
from engine.api import Engine

#: The reference row of the message wake: raw commits timed between its trials.
RAW_COMMIT = "commit (1 row), between the message trials"
#: Seconds of random delay before a child's last line or an answer (a random phase).
POLL = 0.005
#: Seconds a wake child waits before its last line, so its parent is parked by then.
SETTLE = 0.02
#: Two-process wake: how long the parent keeps its worker's only slot busy after
#: creating the child, so the other worker claims the child.
HOLD = 0.03


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"engine wake: timed out after {timeout}s waiting for {what}")
        time.sleep(0.001)


def child_trial(engine: Engine, hold: float, settle: float) -> dict[str, Any]:
    parent = engine.start("bench_wake_parent", {"hold": hold, "settle": settle, "jitter": POLL})
    wait_until(lambda: engine.get(parent).ended, f"wake parent {parent} to end")
    done = engine.get(parent)
    if done.status != "ENDED_SUCCESS":
        raise RuntimeError(f"wake parent {parent} ended {done.status}: {done.message}")
    return dict(done.output_value)


def message_trial(engine: Engine) -> dict[str, Any]:
    parent = engine.start("bench_wake_message")
    waiting: list[str] = []

    def parked() -> bool:
        waiting[:] = [m.id for m in engine.store.list_messages(status="waiting", execution_id=parent)]
        return bool(waiting) and engine.get(parent).status == "WAITING"

    wait_until(parked, f"wake parent {parent} to wait for its message")
    time.sleep(random.uniform(0, POLL))  # answer at a random moment after the parent parked
    sent = time.time()
    engine.store.answer_message(waiting[0], {"sent": sent})
    wait_until(lambda: engine.get(parent).ended, f"wake parent {parent} to end")
    return dict(engine.get(parent).output_value)


def _raw_commit_ms(conn: sqlite3.Connection, trial: int) -> float:
    """ms per commit of 3 raw commits of one ~200-byte row (as the ``limit`` row's)."""
    body = os.urandom(ROW_BYTES)
    start = time.perf_counter()
    for seq in range(trial * 3, trial * 3 + 3):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO events VALUES (?, ?, ?)", ("k", seq, body))
        conn.execute("COMMIT")
    return (time.perf_counter() - start) / 3 * 1e3


def _wake_rows(subject: str, sync: Durability, latencies_s: list[float],
               waker: str = "child's", reference: Row | None = None) -> list[Row]:
    ms = [s * 1e3 for s in latencies_s]
    rows = [
        Row("wake", subject, sync, f"p{q}: {waker} last line → parent", "ms",
            percentile(ms, q), min(ms), max(ms), len(ms), "engine")
        for q in (50, 99)
    ]
    return rows if reference is None else [r.against(reference) for r in rows]


@register("wake", group=GROUP, kind="engine")
def engine_wake(ctx: Context) -> list[Row]:
    """A parent starts a child (`this.flow(..., wait=False)`) and waits for it
    (`this.wait_for`), one new parent per trial, 50 trials (quick 10) after warm-ups;
    this process starts each parent and reads its output. Latency runs, as in DBOS's row,
    from the child's last line, a time.time() taken just before its final durable write
    (its end commit), to the parent's next line after the wait; it includes that commit,
    the claim, and loading and replaying the parent unless its handler is still parked in
    the worker's warm cache (`engine.warm`). The child first sleeps 20 ms plus a
    random 0..5 ms, outside the measured span, so the parent is parked. *one process*:
    one `engine worker` (concurrency 16) runs both; *--no-warm-cache*: the same with a
    worker that replays the parent from its log (run just before, on the same database). *child on another process*: two
    `engine worker --concurrency 1` processes; after creating the child the parent keeps
    its worker's only slot busy for 30 ms (in a recorded step), so the other worker
    claims the child (which then settles 50 ms); trials where the pids show otherwise
    are dropped and counted in a note. A commit leases what it makes runnable to the
    committing worker, so the child's worker resumes the parent: no poll is involved.
    *message from another process*: the parent waits on `this.message`; this process
    answers it (store.answer_message, the durable write, with time.time() taken just
    before) at a random 0..5 ms moment after the parent parked; the answer's commit sends
    a wake-up notice (store.notices: a datagram to each worker's unix socket named in
    `<db>-wake/`) that the parent's `engine worker` (default safety-net poll, 1 s) waits
    for. Before each message trial this process times 3 raw commits (as the `limit` row's
    commit (1 row), into one file beside the database): the message rows give their ratio
    to the median of those, taken in the same minutes as the trials.
    Workers run with the default --poll (1 s, the safety net). Rows give p50 and p99
    (linear interpolation), min and max of the trials."""
    trials = ctx.size(50, 10, 3)
    rows: list[Row] = []
    for sync in levels(ctx):
        directory = ctx.scratch(f"engine-wake-{sync}")
        db = directory / "engine.db"
        engine = Engine(db, synchronous=sync)
        engine.sync_flows(FLOWS)
        try:
            with workers(db, sync, 1, concurrency=16, warm_cache=False):
                child_trial(engine, 0.0, SETTLE)  # warm-up
                cold = [child_trial(engine, 0.0, SETTLE)["latency"] for _ in range(trials)]
            with workers(db, sync, 1, concurrency=16):
                child_trial(engine, 0.0, SETTLE)  # warm-up
                one = [child_trial(engine, 0.0, SETTLE)["latency"] for _ in range(trials)]
                message_trial(engine)
                message, raw = [], []
                limit = fresh_db(directory, sync)
                for trial in range(trials):  # the limit beside each trial: this machine's load varies by the minute
                    raw.append(_raw_commit_ms(limit, trial))
                    message.append(message_trial(engine)["latency"])
                limit.close()
            with workers(db, sync, 2, concurrency=1):
                two: list[float] = []
                dropped = 0
                for _ in range(2):
                    child_trial(engine, HOLD, HOLD + SETTLE)  # warm both workers
                while len(two) < trials and dropped < trials:
                    out = child_trial(engine, HOLD, HOLD + SETTLE)
                    if out["parked_pid"] != out["child_pid"] == out["woke_pid"]:
                        two.append(out["latency"])
                    else:
                        dropped += 1
                if dropped:
                    ctx.note(f"wake {sync}, child on another process: {dropped} trial(s) dropped "
                             "because one worker ran both parent and child")
        finally:
            engine.close()
        rows += _wake_rows("engine, one process", sync, one)
        rows += _wake_rows("engine, one process, --no-warm-cache", sync, cold)
        rows += _wake_rows("engine, child on another process", sync, two)
        commit = Row.of("wake", RAW, sync, RAW_COMMIT, "ms", Stats.of(raw), "reference")
        rows += [commit, *_wake_rows("engine, message from another process", sync, message, "answerer's", commit)]
    return rows


def _proc_sample(pid: int) -> tuple[float, float]:
    """(CPU seconds of all the process's threads, VmRSS MiB) from /proc.

    CPU sums the first field of every /proc/PID/task/TID/schedstat (ns on the CPU), finer
    than /proc/PID/stat's 10 ms clock ticks.
    """
    cpu_ns = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            cpu_ns += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):  # a thread that just ended
            continue
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    return cpu_ns / 1e9, rss


def _idle_samples(db: Path, sync: str, settle: float, seconds: int) -> tuple[list[float], list[float]]:
    """Per-second CPU (ms) and RSS (MiB) samples of an idle ``engine worker`` on ``db``."""
    with workers(db, sync, 1, concurrency=16) as (proc,):
        time.sleep(settle)
        cpu_ms, rss = [], []
        last, _ = _proc_sample(proc.pid)
        for _ in range(seconds):
            time.sleep(1.0)
            cpu, mib = _proc_sample(proc.pid)
            cpu_ms.append((cpu - last) * 1e3)
            rss.append(mib)
            last = cpu
        if proc.poll() is not None:
            raise RuntimeError(f"idle worker on {db} exited {proc.returncode}")
    return cpu_ms, rss


@register("idle", group=GROUP, kind="engine")
def engine_idle(ctx: Context) -> list[Row]:
    """N executions wait on `this.message` with no timeout (a wait holding no process).
    They are created with Engine.start and run until they wait by embedded workers in an
    `engine_proc idle-prepare` process (at synchronous=NORMAL: setting up is not
    measured), first N = 10,000 then, in the same database, N = 100,000 (quick 1,000
    and 10,000). Then a fresh `engine worker` (concurrency 16, default --poll: 1 s) runs on the
    database; after 2 s to settle, the CPU time of all its threads (/proc/PID/task/*/
    schedstat, ns) and its resident set (/proc/PID/status VmRSS) are read once a second
    for 10 s (quick 3 s): CPU is ms per second of wall time (1 ms/s = 0.1% of a core). *RSS ratio*
    divides the larger N's RSS samples by the smaller N's median: independence of the
    number waiting shows as ×1."""
    # --tiny measures N=10,000 too: the idle target reads it
    sizes = [1000, 10_000] if ctx.tiny or ctx.quick else [10_000, 100_000]
    seconds = 2 if ctx.tiny else 3 if ctx.quick else 10
    settle = 1.0 if ctx.tiny or ctx.quick else 2.0
    db = ctx.scratch("engine-idle") / "engine.db"
    rows: list[Row] = []
    rss_at: dict[tuple[str, int], list[float]] = {}
    for size in sizes:
        setup = run_proc("idle-prepare", db, "NORMAL", size=size)
        ctx.note(f"idle: {size:,} waiting executions set up in {setup['seconds']:.0f} s")
        for sync in levels(ctx):
            cpu_ms, rss = _idle_samples(db, sync, settle, seconds)
            rss_at[(sync, size)] = rss
            rows.append(row("idle", sync, f"N={size:,}: worker CPU while idle", "ms/s", cpu_ms))
            rows.append(row("idle", sync, f"N={size:,}: worker RSS", "MiB", rss))
    low, high = sizes
    for sync in levels(ctx):
        base = Stats.of(rss_at[(sync, low)]).median
        rows.append(row("idle", sync, "RSS ratio, larger N / smaller N", "×",
                        [r / base for r in rss_at[(sync, high)]]))
    return rows
