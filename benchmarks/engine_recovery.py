"""The engine's crash-recovery rows: replaying a long history, and resuming many timers.

Both shapes park executions durably in an ``engine_proc *-prepare`` process, SIGKILL it,
and time fresh ``engine_proc recover`` processes, each on its own copy of the crashed
database (file and WAL), which construct Engine and Worker and take ``t0`` just before
``Worker.run()``. The flows stamp time.time() into a marks file, so the figures compare
clocks across processes, never perf_counter.
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.engine_common import (
    GROUP,
    bare_start_ms,
    levels,
    parked,
    row,
    spawn_cli_worker,
    spawn_recover,
)
from benchmarks.engine_proc import read_marks
from benchmarks.harness import Context, Row, copy_db, register
from benchmarks.raw_sqlite import COMMIT, SCAN

#: The row of a bare interpreter start, the restart target's base.
BARE_START = 'bare start: spawn → exit of `python -c "import engine"`'
#: The restart rows' K: the targets read these rows, at --tiny too.
RESTART_K = 1000
#: The timer the replayed execution parks on: due soon after the crash, so a fresh
#: worker claims it the moment it starts.
REPLAY_DELAY = 0.2


def two_point_slope(ks: list[int], seconds: dict[int, float]) -> float:
    """(t(Kmax) - t(Kmin)) / (Kmax - Kmin) in µs per recorded step."""
    low, high = min(ks), max(ks)
    return (seconds[high] - seconds[low]) / (high - low) * 1e6


def _recover_runs(ctx: Context, crashed: Path, sync: str, name: str) -> list[dict[str, float]]:
    """Per run: spawn, t0, and the recovered execution's marks (the only execution)."""
    runs = []
    for i in range(ctx.runs):
        directory = crashed.parent.parent / f"{name}-run{i}"
        db = copy_db(crashed, directory)
        marks_file = directory / "marks"
        spawned, out = spawn_recover(db, sync, marks_file, concurrency=1)
        (marks,) = read_marks(marks_file).values()
        runs.append({
            "spawned": spawned, "t0": out["t0"], "entered": marks["entered"][0][0],
            "replayed": marks["replayed"][0][0], "resumed": marks["resumed"][0][0],
        })
    return runs


def _cli_restarts(ctx: Context, crashed: Path, sync: str, name: str) -> list[float]:
    """Per run, ms from spawning `engine worker --until-idle` to the handler past its wait."""
    spans = []
    for i in range(ctx.runs):
        directory = crashed.parent.parent / f"{name}-cli-run{i}"
        db = copy_db(crashed, directory)
        spawned = spawn_cli_worker(db, sync, directory / "marks")
        (marks,) = read_marks(directory / "marks").values()
        spans.append((marks["resumed"][0][0] - spawned) * 1e3)
    return spans


@register("replay", group=GROUP, kind="engine")
def engine_replay(ctx: Context) -> list[Row]:
    """An execution records K = 10, 100, 1,000, 10,000 trivial steps, then parks on a
    durable timer (`this.sleep(0.2)`); once it is WAITING its worker process is
    SIGKILLed. After the timer is due, each run copies that crashed database and starts a
    fresh `engine_proc recover` process (Engine + Worker, concurrency 1), which claims the
    due execution at once, loads its log, replays the K steps and fires the timer.
    *dispatch* is t0 (just before Worker.run()) → the handler's first line, at the
    smallest K; it includes loading the log, so it grows with K (the largest K's is
    given too). *start → past step K* ends at the handler's first line after its K
    replayed steps. The *slope* is (t(Kmax) − t(Kmin)) / (Kmax − Kmin) of start → past
    step K within each run index, µs per recorded step, load and decode included (ratio:
    one raw row of the range scan). *restart* runs from just before the parent
    benchmark process spawns the recover process (interpreter start and imports
    included) to the handler's first line past its timer, at K = 1,000; *bare start* is
    the same interpreter, spawned the same way, running `python -c "import engine"` (an
    empty package) to its exit, and *restart ÷ (bare start + slope × 1,000)* divides each
    run's restart by that run's bare start plus its slope times 1,000; *restart via
    `engine worker`* is the same span for the console script a user would run
    (`engine --db PATH worker --until-idle --concurrency 1`), which also imports click
    and the CLI."""
    ks = [10, RESTART_K] if ctx.tiny else [10, 100, RESTART_K, 10_000]
    rows = []
    for sync in levels(ctx):
        directory = ctx.scratch(f"engine-replay-{sync}")
        runs: dict[int, list[dict[str, float]]] = {}
        for k in ks:
            crashed = directory / f"k{k}" / "engine.db"
            crashed.parent.mkdir()
            with parked("replay-prepare", crashed, sync, size=k, delay=REPLAY_DELAY) as lines:
                due = float(next(ln for ln in lines if ln.startswith("DUE ")).split()[1])
            time.sleep(max(0.0, due - time.time()) + 0.01)
            runs[k] = _recover_runs(ctx, crashed, sync, f"k{k}")
            if k == RESTART_K:
                cli = _cli_restarts(ctx, crashed, sync, f"k{k}")
                bare = [bare_start_ms() for _ in range(ctx.runs)]
        low, high = min(ks), max(ks)
        for k in (low, high):
            rows.append(row("replay", sync, f"dispatch: start → entered, K={k}", "ms",
                            [(r["entered"] - r["t0"]) * 1e3 for r in runs[k]]))
        for k in ks:
            rows.append(row("replay", sync, f"start → past step {k}", "ms",
                            [(r["replayed"] - r["t0"]) * 1e3 for r in runs[k]]))
        slopes = [two_point_slope(ks, {k: runs[k][i]["replayed"] - runs[k][i]["t0"] for k in ks})
                  for i in range(ctx.runs)]
        rows.append(row("replay", sync, "slope per recorded step", "µs", slopes,
                        ctx.reference(SCAN, "n/a")))
        restarts = [(r["resumed"] - r["spawned"]) * 1e3 for r in runs[RESTART_K]]
        rows.append(row("replay", sync, f"restart: spawn → past its wait, K={RESTART_K}", "ms", restarts))
        rows.append(row("replay", sync, BARE_START, "ms", bare))
        # slope µs per step × RESTART_K steps / 1,000 = ms
        rows.append(row("replay", sync, f"restart ÷ (bare start + slope × {RESTART_K:,})", "×",
                        [r / (b + s * RESTART_K / 1e3) for r, b, s in zip(restarts, bare, slopes, strict=True)]))
        rows.append(row("replay", sync, f"restart via `engine worker`, K={RESTART_K}", "ms", cli))
    return rows


@register("restart", group=GROUP, kind="engine")
def engine_restart(ctx: Context) -> list[Row]:
    """1,000 (quick 100) executions each enter `this.sleep` until one shared due time,
    then their worker process is SIGKILLed. After the due time, each run copies that
    crashed database and spawns a fresh `engine_proc recover` process (concurrency 16);
    an execution counts as resumed at its first line past the replayed timer. *process
    start → all resumed* runs from just before the spawn (interpreter start and imports
    included); *worker start → all resumed* from just before Worker.run(); *per
    execution after the first* is (last resumed − first resumed) / (count − 1), the rate
    once recovery is under way (ratio: one raw commit). Each resumed execution then ends,
    which is one more commit, before the worker goes idle."""
    count = ctx.size(1000, 100, 10)
    rows = []
    for sync in levels(ctx):
        directory = ctx.scratch(f"engine-restart-{sync}")
        crashed = directory / "crashed" / "engine.db"
        crashed.parent.mkdir()
        due_at = _park_sleepers(crashed, sync, count)
        time.sleep(max(0.0, due_at - time.time()) + 0.05)
        total, after_start, spacing = [], [], []
        for i in range(ctx.runs):
            db = copy_db(crashed, directory / f"run{i}")
            marks_file = db.with_name("marks")
            spawned, out = spawn_recover(db, sync, marks_file, concurrency=16)
            resumed = [m["resumed"][0][0] for m in read_marks(marks_file).values()]
            if len(resumed) != count:
                raise RuntimeError(f"restart: {len(resumed)} of {count} executions resumed")
            total.append(max(resumed) - spawned)
            after_start.append(max(resumed) - out["t0"])
            spacing.append((max(resumed) - min(resumed)) / max(1, count - 1))
        rows.append(row("restart", sync, f"process start → all {count} resumed", "s", total))
        rows.append(row("restart", sync, "worker start → all resumed", "s", after_start))
        rows.append(row("restart", sync, "per execution after the first", "µs",
                        [s * 1e6 for s in spacing], ctx.reference(COMMIT, sync)))
    return rows


def _park_sleepers(db: Path, sync: str, count: int) -> float:
    """Park ``count`` sleepers due soon after they are all parked; their due time."""
    base = 1.0 + count * 0.004
    error: RuntimeError | None = None
    for due_in in (base, base * 3, base * 9):
        due_at = time.time() + due_in
        try:
            with parked("restart-prepare", db, sync, size=count, due_at=due_at):
                return due_at
        except RuntimeError as exc:
            error = exc
            for stale in db.parent.glob(db.name + "*"):
                stale.unlink()
    raise RuntimeError(f"could not park {count} sleepers before they were due: {error}")
