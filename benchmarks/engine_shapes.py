"""The engine's rows: recording, throughput and fan-out here; replay and restart in
``engine_recovery``, wake-up and idle scale in ``engine_wake``, one-step executions against
the baseline commit in ``engine_short``; the targets in ``engine_targets``. Importing this module registers them all.

Each shape runs at the engine's default durability (synchronous=FULL) and at NORMAL, in
fresh processes (``benchmarks/engine_proc.py``) on a database in the scratch directory.
"""

from __future__ import annotations

from benchmarks import engine_recovery, engine_short, engine_targets, engine_wake  # noqa: F401  (registration)
from benchmarks.engine_common import GROUP, LEVELS, per_second, row, run_proc
from benchmarks.harness import Context, Row, register
from benchmarks.raw_sqlite import BATCH, COMMIT
from engine.commands.children import MAX_TREE_EXECUTIONS


@register("record", group=GROUP, kind="engine")
def engine_record(ctx: Context) -> list[Row]:
    """One execution makes 1,000 sequential `this.step` calls with a trivial body (quick
    runs too), then 10,000 `this.log` calls and one more step; each run is a new execution
    in one `engine_proc record` process, after a warm-up execution. *per step* is wall time
    from the handler's first line to the line after the last step, divided by the steps;
    it leaves out the activation's start and end, two commits in a thousand (DBOS's row
    includes its workflow's). *CPU per step* is time.process_time() (user and system time
    of every thread of the process, so the worker's loop and, at FULL, the kernel's fsync
    work too) over the same span. *this.log per call* runs from
    after the steps to after the extra step whose commit carries the pending log events,
    so it includes writing them (ratio: one row of the raw batched insert). The engine
    commits once per step, so per step divides by one raw commit at the same level."""
    steps = ctx.size(1000, 1000, 20)
    logs = ctx.size(10_000, 10_000, 200)
    rows = []
    for sync in LEVELS:
        db = ctx.scratch(f"engine-record-{sync}") / "engine.db"
        out = run_proc("record", db, sync, db.with_name("marks"), size=steps, logs=logs,
                       runs=ctx.runs)["runs"]
        rows.append(row("record", sync, "per step", "µs", [r["step_us"] for r in out],
                        ctx.reference(COMMIT, sync)))
        rows.append(row("record", sync, "CPU per step", "µs", [r["step_cpu_us"] for r in out]))
        rows.append(row("record", sync, "this.log per call", "µs", [r["log_us"] for r in out],
                        ctx.reference(BATCH, sync)))
    return rows


@register("children", group=GROUP, kind="engine")
def engine_children(ctx: Context) -> list[Row]:
    """A parent calls `this.flow('bench_child', wait=False)` 200 times (and, in the full
    run, 9,999 times: the engine refuses a tree of more than 10,000 executions,
    engine/replay.py MAX_TREE_EXECUTIONS, and the parent counts), then `this.wait_for(*children)`; the child ends at once. An
    embedded worker (concurrency 16) runs parent and children in one `engine_proc
    children` process, a new parent per run after a 5-child warm-up. *total* runs from
    the parent's first line (first activation) to its line after the wait (the
    activation woken by the last child), so it includes the parent's replay of its
    children's creation. *transactions per child* counts the store's group-commit
    batches (`BEGIN IMMEDIATE`..`COMMIT`) that changed a row, from just before the
    parent is started to its end, by wrapping the store's batch function in the process
    (claims that find nothing write nothing and are not counted), divided by the children;
    *commits per child* counts the units those batches carried (a child's commit, a claim,
    a creation), which several threads share under load. *peak RSS* is the process's
    ru_maxrss after the runs. Per child divides the total by the children (ratio: one raw
    commit); DBOS's row is the same shape."""
    # The tree limit counts the parent: 10,000 children would be refused at the last one.
    largest = min(10_000, MAX_TREE_EXECUTIONS - 1)
    sizes = [200] + ([largest] if not (ctx.quick or ctx.tiny) else [])
    rows = []
    for sync in LEVELS:
        for size in sizes:
            db = ctx.scratch(f"engine-children-{sync}-{size}") / "engine.db"
            runs = ctx.runs if size <= 1000 else 1
            out = run_proc("children", db, sync, db.with_name("marks"), size=size, runs=runs)
            totals = [r["total_s"] for r in out["runs"]]
            rows.append(row("children", sync, f"{size} children, total", "ms",
                            [t * 1e3 for t in totals]))
            rows.append(row("children", sync, f"{size} children, per child", "µs",
                            [t / size * 1e6 for t in totals], ctx.reference(COMMIT, sync)))
            rows.append(row("children", sync, f"{size} children, transactions per child", "",
                            [r["writing"] / size for r in out["runs"]]))
            rows.append(row("children", sync, f"{size} children, commits per child", "",
                            [r["units"] / size for r in out["runs"]]))
            rows.append(row("children", sync, f"{size} children, peak RSS", "MiB",
                            [out["peak_rss_kib"] / 1024]))
    return rows


@register("throughput", group=GROUP, kind="engine")
def engine_throughput(ctx: Context) -> list[Row]:
    """16 executions of 1,000 (quick 300) sequential trivial steps each, started together
    on one embedded worker with concurrency 16 in one `engine_proc throughput` process, a
    new batch per run after a warm-up. *durable steps/s* divides all steps by the span
    from the first handler's first line to the last handler's line after its steps
    (ratio: the raw single-row commits per second at the same level, 1e6 / the commit
    row's µs). *CPU per step* is process CPU over that span divided by the steps. *steps
    per transaction* is the group commit's batching: units committed per writing
    transaction."""
    executions = 16
    steps = ctx.size(1000, 300, 20)
    rows = []
    for sync in LEVELS:
        db = ctx.scratch(f"engine-throughput-{sync}") / "engine.db"
        out = run_proc("throughput", db, sync, db.with_name("marks"), size=steps,
                       executions=executions, runs=ctx.runs)["runs"]
        rows.append(row("throughput", sync, "durable steps/s", "/s",
                        [r["steps_per_s"] for r in out], per_second(ctx.reference(COMMIT, sync))))
        rows.append(row("throughput", sync, "CPU per step", "µs", [r["cpu_us"] for r in out]))
        rows.append(row("throughput", sync, "steps per transaction", "",
                        [r["per_transaction"] for r in out]))
    return rows
