"""The peer: DBOS Transact on a SQLite system database, in the same tables as the engine.

Every measurement runs DBOS in a fresh subprocess (``benchmarks/_dbos_worker.py``) on a
database file in the scratch directory, preset to WAL, with ``synchronous`` set on every
connection DBOS opens. DBOS is imported only by the worker, so the suite runs without it;
when ``import dbos`` fails the DBOS rows are skipped with a note.

In quick and tiny runs the shapes that need several processes (replay, restart) and the
slow wake are measured at synchronous=FULL only, SQLite's default, which DBOS leaves in
place; record and children, one process each, and every full run measure FULL and NORMAL.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    Context,
    Durability,
    Row,
    Stats,
    copy_db,
    parked_process,
    percentile,
    register,
)
from benchmarks.raw_sqlite import COMMIT, SCAN

REPO = Path(__file__).resolve().parent.parent
WORKER = (sys.executable, "-m", "benchmarks._dbos_worker")
GROUP = "dbos"
SUBJECT = "dbos"
#: DBOS's notification_listener_polling_interval_sec when unset (dbos/_dbos.py, _launch).
DEFAULT_POLL = 1.0
FAST_POLL = 0.01
_availability: dict[str, bool] = {}


def available(ctx: Context) -> bool:
    """Whether ``import dbos`` works; notes the skip once when it does not."""
    if "dbos" not in _availability:
        probe = subprocess.run(
            (sys.executable, "-c", "import dbos"), capture_output=True, text=True, cwd=REPO
        )
        _availability["dbos"] = probe.returncode == 0
        if probe.returncode != 0:
            reason = (probe.stderr.strip().splitlines() or ["unknown error"])[-1]
            ctx.note(f"DBOS rows skipped: `import dbos` failed ({reason}); "
                     "install the `bench` extra to measure the peer")
    return _availability["dbos"]


def levels(ctx: Context) -> tuple[Durability, ...]:
    """Synchronous levels to measure the costlier shapes at in this mode."""
    return ("FULL",) if ctx.quick or ctx.tiny else ("FULL", "NORMAL")


def _command(command: str, db: Path, sync: str, options: dict[str, Any]) -> list[str]:
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in options.items()]
    return [*WORKER, command, f"--db={db}", f"--sync={sync}", *flags]


def run_worker(command: str, db: Path, sync: str, **options: Any) -> dict[str, Any]:
    """Run one worker command to completion and return its RESULT payload."""
    done = subprocess.run(
        _command(command, db, sync, options), capture_output=True, text=True, cwd=REPO,
        timeout=900,
    )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            payload: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
            return payload
    raise RuntimeError(
        f"DBOS worker `{command}` on {db} exited {done.returncode} without a result; "
        f"its stderr ends with:\n{done.stderr[-2000:]}"
    )


@contextmanager
def parked(command: str, db: Path, sync: str, **options: Any) -> Iterator[list[str]]:
    """Run a ``*-prepare`` worker until it prints READY, yield its earlier lines, SIGKILL it."""
    with parked_process(_command(command, db, sync, options), cwd=REPO, env=None,
                        what=f"DBOS worker `{command}`") as lines:
        yield lines


def _row(bench: str, subject: str, sync: Durability, metric: str, unit: str,
         samples: list[float], reference: Row | None = None) -> Row:
    return Row.of(bench, subject, sync, metric, unit, Stats.of(samples), "peer", reference)


@register("record", group=GROUP, kind="peer")
def dbos_record(ctx: Context) -> list[Row]:
    """One @DBOS.workflow calling 1,000 (quick 200) sequential trivial @DBOS.step functions,
    called directly in the worker's main thread after a 10-step warm-up workflow. µs per
    step is the workflow call's wall time divided by the steps, so it includes the
    workflow's own start and end writes; CPU per step is time.process_time() (all threads
    of the process) over the same span. One run is one workflow; all runs share a process.
    The ratio divides by one raw commit at the same level: DBOS commits once per step."""
    if not available(ctx):
        return []
    steps = ctx.size(1000, 200, 20)
    rows = []
    for sync in ("FULL", "NORMAL"):
        db = ctx.scratch(f"dbos-record-{sync}") / "dbos.sqlite"
        out = run_worker("record", db, sync, size=steps, runs=ctx.runs)
        rows.append(_row("record", SUBJECT, sync, "per step", "µs", out["wall_us"],
                         ctx.reference(COMMIT, sync)))
        rows.append(_row("record", SUBJECT, sync, "CPU per step", "µs", out["cpu_us"]))
    return rows


def slope(ks: list[int], seconds: list[float]) -> float:
    """Least-squares slope of seconds over K, in µs per step."""
    mean_k = sum(ks) / len(ks)
    mean_s = sum(seconds) / len(seconds)
    num = sum((k - mean_k) * (s - mean_s) for k, s in zip(ks, seconds, strict=True))
    den = sum((k - mean_k) ** 2 for k in ks)
    return num / den * 1e6


@register("replay", group=GROUP, kind="peer")
def dbos_replay(ctx: Context) -> list[Row]:
    """A workflow records K = 10, 100, 1,000 (quick 10, 100) trivial steps, then blocks in
    DBOS.recv (a durable wait); once its recv timeout row is committed the process is
    SIGKILLed. Each run copies that crashed database and starts a fresh process that
    constructs DBOS and times DBOS.launch(): *dispatch* is launch → first line of the
    recovered workflow; *launch → past step K* ends at the workflow's first line after its
    K replayed steps; the *slope* is the least-squares fit of (first line → past step K)
    over K within each run index, µs per recorded step (ratio: one raw row of the range
    scan). DBOS recovery re-enqueues pending workflows on its internal queue, which is
    polled every 1 s (not configurable), so dispatch is about 1 s by design. Recovery
    matches executor id and application version: the worker pins both ("bench")."""
    if not available(ctx):
        return []
    if ctx.tiny:
        ks = [5, 20]
    else:
        ks = [10, 100] if ctx.quick else [10, 100, 1000]
    rows = []
    for sync in levels(ctx):
        directory = ctx.scratch(f"dbos-replay-{sync}")
        runs: dict[int, list[dict[str, float]]] = {}
        for k in ks:
            crashed = directory / f"k{k}" / "dbos.sqlite"
            crashed.parent.mkdir()
            with parked("replay-prepare", crashed, sync, size=k):
                pass
            runs[k] = [
                run_worker("replay-recover", copy_db(crashed, directory / f"k{k}-run{i}"),
                           sync, size=k)
                for i in range(ctx.runs)
            ]
        dispatch = [(r["entered"] - r["launch"]) * 1e3 for k in ks for r in runs[k]]
        rows.append(_row("replay", SUBJECT, sync, "dispatch: launch → entered", "ms", dispatch))
        for k in ks:
            rows.append(_row("replay", SUBJECT, sync, f"launch → past step {k}", "ms",
                             [(r["replayed"] - r["launch"]) * 1e3 for r in runs[k]]))
        slopes = [slope(ks, [runs[k][i]["replayed"] - runs[k][i]["entered"] for k in ks])
                  for i in range(ctx.runs)]
        rows.append(_row("replay", SUBJECT, sync, "slope per recorded step", "µs", slopes,
                         ctx.reference(SCAN, "n/a")))
    return rows


def _wake_rows(subject: str, sync: Durability, latencies_s: list[float]) -> list[Row]:
    ms = [s * 1e3 for s in latencies_s]
    low, high = min(ms), max(ms)
    return [
        Row("wake", subject, sync, f"p{q}: child's last line → parent", "ms",
            percentile(ms, q), low, high, len(ms), "peer")
        for q in (50, 99)
    ]


@register("wake", group=GROUP, kind="peer")
def dbos_wake(ctx: Context) -> list[Row]:
    """A parent workflow starts a child (DBOS.start_workflow) and waits for it, over 50
    trials (quick 10) in one process after one warm-up trial. Latency runs from the child's
    last line, a time.time() taken just before its final durable write, to the parent's
    next line after the wait, so it includes that write. Via DBOS.send/DBOS.recv the
    parent's wake is discovered by DBOS's notification poller (on SQLite there is no
    LISTEN/NOTIFY), measured at the default interval and at 0.01 s. Each child first
    sleeps (outside the measured span) 20 ms, so the parent is parked in its wait, plus a
    random 0..interval, so it ends at a random phase of the poller: without the first the
    child can finish before the parent waits (the wait then returns at once), without the
    second the loop phase-locks to the poller and every trial reads one full interval. Via
    handle.get_result() the child runs in the same process and wakes the parent through an
    in-memory future, not a durable poll: the interval does not apply. Rows give p50 and
    p99 (linear interpolation), min and max of the trials."""
    if not available(ctx):
        return []
    trials = ctx.size(50, 10, 3)
    rows = []
    for sync in levels(ctx):
        for poll, label in ((DEFAULT_POLL, f"default poll {DEFAULT_POLL:g}s"),
                            (FAST_POLL, f"poll {FAST_POLL:g}s")):
            db = ctx.scratch(f"dbos-wake-{sync}-{poll}") / "dbos.sqlite"
            out = run_worker("wake", db, sync, size=trials, via="recv", poll=poll, jitter=poll)
            rows += _wake_rows(f"dbos recv ({label})", sync, out["latencies_s"])
        db = ctx.scratch(f"dbos-wake-{sync}-result") / "dbos.sqlite"
        out = run_worker("wake", db, sync, size=trials, via="result")
        rows += _wake_rows("dbos get_result (in-process)", sync, out["latencies_s"])
    return rows


@register("children", group=GROUP, kind="peer")
def dbos_children(ctx: Context) -> list[Row]:
    """A parent workflow calls DBOS.start_workflow 200 times on a trivial child workflow,
    then handle.get_result() on each; time of the parent call from the worker's main
    thread, after a 5-child warm-up. Children run on DBOS's thread pool in the same
    process. Per child divides the total by 200 (ratio: one raw commit)."""
    if not available(ctx):
        return []
    children = ctx.size(200, 200, 10)
    rows = []
    for sync in ("FULL", "NORMAL"):
        db = ctx.scratch(f"dbos-children-{sync}") / "dbos.sqlite"
        totals = run_worker("children", db, sync, size=children, runs=ctx.runs)["total_s"]
        rows.append(_row("children", SUBJECT, sync, f"{children} children, total", "ms",
                         [t * 1e3 for t in totals]))
        rows.append(_row("children", SUBJECT, sync, "per child", "µs",
                         [t / children * 1e6 for t in totals], ctx.reference(COMMIT, sync)))
    return rows


def _prepare_sleepers(db: Path, sync: str, workflows: int) -> float:
    """Park ``workflows`` durable sleeps due soon, SIGKILL, return their due time.

    The sleeps must outlast starting them all; if they do not, retry with a longer one.
    """
    base = 1.5 + workflows * 0.005
    error: RuntimeError | None = None
    for due_in in (base, base * 3, base * 9):
        try:
            with parked("restart-prepare", db, sync, size=workflows, due_in=due_in) as lines:
                return float(next(ln for ln in lines if ln.startswith("DUE ")).split()[1])
        except RuntimeError as exc:
            error = exc
            for stale in db.parent.glob(db.name + "*"):
                stale.unlink()
    raise RuntimeError(f"could not park {workflows} DBOS sleepers before they were due: {error}")


@register("restart", group=GROUP, kind="peer")
def dbos_restart(ctx: Context) -> list[Row]:
    """1,000 (quick 100) workflows each enter DBOS.sleep until one shared due time, then the
    process is SIGKILLed. After the due time, each run copies that crashed database and
    spawns a fresh process that launches DBOS; a workflow counts as resumed at its first
    line after the replayed sleep. *process start → all resumed* runs from just before the
    spawn (so includes interpreter start and `import dbos`); *launch → all resumed* from
    DBOS.launch(), which includes the internal queue's 1 s poll; *per workflow after the
    first* is (last resumed − first resumed) / (count − 1), the rate once recovery is
    under way (ratio: one raw commit)."""
    if not available(ctx):
        return []
    workflows = ctx.size(1000, 100, 10)
    rows = []
    for sync in levels(ctx):
        directory = ctx.scratch(f"dbos-restart-{sync}")
        crashed = directory / "crashed" / "dbos.sqlite"
        crashed.parent.mkdir()
        due_at = _prepare_sleepers(crashed, sync, workflows)
        time.sleep(max(0.0, due_at - time.time()) + 0.05)
        total, after_launch, spacing = [], [], []
        for i in range(ctx.runs):
            db = copy_db(crashed, directory / f"run{i}")
            spawned = time.time()
            out = run_worker("restart-recover", db, sync, size=workflows)
            total.append(out["resumed"] - spawned)
            after_launch.append(out["resumed"] - out["launch"])
            spacing.append((out["resumed"] - out["first"]) / max(1, workflows - 1))
        rows.append(_row("restart", SUBJECT, sync, f"process start → all {workflows} resumed",
                         "s", total))
        rows.append(_row("restart", SUBJECT, sync, "launch → all resumed", "s", after_launch))
        rows.append(_row("restart", SUBJECT, sync, "per workflow after the first", "µs",
                         [s * 1e6 for s in spacing], ctx.reference(COMMIT, sync)))
    return rows
