"""One-step executions per second with one worker, for this tree and for the commit issue 15
was filed at (``cost.BASELINE``), measured in the same run from a temporary git worktree
of it, so that their ratio does not depend on the machine's load that hour.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks import cost
from benchmarks.engine_common import GROUP, SUBJECT, levels
from benchmarks.harness import Context, Row, Stats, copy_db, register

WORKLOAD = Path(__file__).resolve().with_name("short_workload.py")
METRIC = "one-step executions/s, one worker"
CPU_METRIC = "CPU per one-step execution"
BASELINE_SUBJECT = f"{SUBJECT} at {cost.BASELINE}"
RATIO_SUBJECT = f"{SUBJECT} ÷ {cost.BASELINE}"


def _workload(tree: Path, work: Path, *args: str) -> dict[str, float]:
    """Run the workload script (a copy in ``work``) with ``tree``'s engine; its RESULT."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("ENGINE_DB", None)
    done = subprocess.run([sys.executable, str(work / WORKLOAD.name), *args], cwd=work, env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    ran = next((ln.split(" ", 1)[1] for ln in done.stderr.splitlines() if ln.startswith("ENGINE ")), None)
    if done.returncode != 0:
        raise RuntimeError(f"short workload {' '.join(args)} on {tree} exited {done.returncode}: "
                           f"{done.stderr[-3000:]}")
    if ran is not None and not Path(ran).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"the short workload imported the engine from {ran}, not from {tree}")
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            payload: dict[str, float] = json.loads(line.removeprefix("RESULT "))
            return payload
    return {}


@register("throughput", group=GROUP, kind="engine")
def engine_short(ctx: Context) -> list[Row]:
    """N = 2,000 (quick 1,000) executions of a flow making one trivial `this.step` are
    created (at NORMAL, not measured), then one embedded worker (concurrency 16, poll 5 ms)
    in a fresh process (`benchmarks/short_workload.py`) runs them until idle: claim, load,
    replay, the step's commit, the end. *one-step executions/s* divides N by the wall time
    of `Worker.run()`; *CPU per one-step execution* is the process's CPU over it divided by
    N. The same script runs with the engine of commit 78d0967 (the one issue 15 was filed at,
    checked out in a temporary git worktree, as `python -m benchmarks cost --against` does),
    alternating with this tree's runs on copies of databases each tree prepared;
    *engine ÷ 78d0967* divides this tree's executions/s by the baseline's, run by run."""
    n = ctx.size(2000, 1000, 20)
    work = ctx.scratch("engine-short")
    shutil.copy(WORKLOAD, work / WORKLOAD.name)
    baseline = work / f"rev-{cost.BASELINE}"
    trees = {SUBJECT: cost.REPO, BASELINE_SUBJECT: baseline}
    try:
        cost.checkout(cost.BASELINE, baseline)
    except subprocess.CalledProcessError as exc:
        why = (exc.stderr or b"").decode(errors="replace").strip()[:200]
        ctx.note(f"throughput: commit {cost.BASELINE} could not be checked out ({why}); one-step "
                 "executions measured for this tree only (fetch the full history to compare)")
        del trees[BASELINE_SUBJECT]
    rows: list[Row] = []
    try:
        prepared = {}
        for subject, tree in trees.items():
            db = work / subject.replace(" ", "-") / "prepared" / "engine.db"
            db.parent.mkdir(parents=True)
            _workload(tree, work, "prepare", str(n), str(db))
            prepared[subject] = db
        for sync in levels(ctx):
            rates: dict[str, list[float]] = {s: [] for s in trees}
            cpu: dict[str, list[float]] = {s: [] for s in trees}
            for i in range(ctx.runs):
                for subject, tree in trees.items():
                    db = copy_db(prepared[subject], prepared[subject].parent.parent / f"{sync}-run{i}")
                    out = _workload(tree, work, "run", sync, str(db))
                    rates[subject].append(out["executions"] / out["seconds"])
                    cpu[subject].append(out["cpu"] / out["executions"] * 1e6)
            for subject in trees:
                rows.append(Row.of("throughput", subject, sync, METRIC, "/s", Stats.of(rates[subject])))
                rows.append(Row.of("throughput", subject, sync, CPU_METRIC, "µs", Stats.of(cpu[subject])))
            if BASELINE_SUBJECT not in trees:
                continue
            ratios = [a / b for a, b in zip(rates[SUBJECT], rates[BASELINE_SUBJECT], strict=True)]
            rows.append(Row.of("throughput", RATIO_SUBJECT, sync, METRIC, "×", Stats.of(ratios)))
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=cost.REPO,
                       check=False, capture_output=True)
    return rows
