"""The one-step-executions workload, run as a script (by path, so that the engine it imports
is whichever ``PYTHONPATH`` names: this tree or the baseline commit's worktree).

``prepare N DB`` creates N executions of a flow making one trivial step (at NORMAL: setting
up is not measured). ``run SYNC DB`` runs one embedded worker (concurrency 16, poll 5 ms) at
``SYNC`` until nothing is left to do and prints ``RESULT {json}``: the executions ended, the
wall seconds and the process CPU seconds of ``Worker.run()``. Only the ``engine.api.Engine``
surface that commit 78d0967 already had is used, so both trees run the same script.
"""

from __future__ import annotations

import json
import sys
import time

from engine import api
from engine.api import Engine

FLOW = '''
def trivial(i):
    return i


def handler(system, this, inputs):
    this.step(trivial, inputs["i"])
'''

WORKER = {"concurrency": 16, "poll_interval": 0.005}


def prepare(n: int, db: str) -> None:
    engine = Engine(db, synchronous="NORMAL")
    engine.register_flow("bench_short", FLOW)
    for i in range(n):
        engine.start("bench_short", {"i": i})
    engine.close()


def run(sync: str, db: str) -> None:
    print(f"ENGINE {api.__file__}", file=sys.stderr)  # the caller checks which tree ran
    engine = Engine(db, synchronous=sync)
    worker = engine.worker(**WORKER)
    wall, cpu = time.perf_counter(), time.process_time()
    worker.run(until_idle=True, max_store_failures=3)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    statuses = engine.store.count_by_status()
    engine.close()
    if set(statuses) != {"ENDED_SUCCESS"}:
        raise SystemExit(f"the workload did not end cleanly: {statuses}")
    print("RESULT " + json.dumps({"executions": statuses["ENDED_SUCCESS"], "seconds": wall, "cpu": cpu}),
          flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["prepare"] and len(sys.argv) == 4:
        prepare(int(sys.argv[2]), sys.argv[3])
    elif sys.argv[1:2] == ["run"] and len(sys.argv) == 4:
        run(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit("usage: short_workload.py prepare N DB | run SYNC DB")
