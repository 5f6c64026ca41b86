"""The fixed workloads of ``python -m benchmarks cost``, run as a script (by path, so that
the engine it imports is whichever ``PYTHONPATH`` names: this tree or another commit's).

``prepare SHAPE N DB`` (natively) registers the flow and creates the executions;
``run DB`` (under callgrind) runs one embedded worker, concurrency 1, until nothing is
left to do. Only the stable ``engine.api.Engine`` surface is used, so the same script
measures older commits too.

Shapes:
- ``steps``: one execution making N sequential ``this.step`` calls with a trivial body.
- ``short``: N executions of a flow making one trivial step each (claim, load, replay,
  step, end).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from engine import api
from engine.api import Engine

STEPS_FLOW = '''
def trivial(i):
    return i


def handler(system, this, inputs):
    for i in range(inputs["steps"]):
        this.step(trivial, i)
'''

SHORT_FLOW = '''
def trivial(i):
    return i


def handler(system, this, inputs):
    this.step(trivial, inputs["i"])
'''

#: Long enough that no lease renewal or idle poll happens during a run under callgrind:
#: the worker then wakes only when a commit tells it to, so its work is the same in every run.
QUIET = {"concurrency": 1, "poll_interval": 3600.0, "lease_seconds": 36000.0}

#: Housekeeping that runs on a wall-clock cadence (looking whether the database file was
#: replaced, for due schedules, for cancelled executions; asking the store whether the lease
#: still holds before a step body when the last commit is more than ``TRUSTED_FOR`` old,
#: which natively is almost never and under callgrind's ~50× slowdown often) would count
#: more instructions the slower the run goes: these intervals are made long for the run.
#: (module, constant) pairs; one a commit does not have is left alone.
CADENCES = (
    ("store.dbfiles", "INTERVAL"),
    ("engine.schedules", "CHECK_EVERY"),
    ("engine.worker", "LEASE_CHECK_EVERY"),
    ("engine.live", "TRUSTED_FOR"),
)


def prepare(shape: str, n: int, db: str) -> None:
    engine = Engine(db, synchronous="NORMAL")
    if shape == "steps":
        engine.register_flow("cost_steps", STEPS_FLOW)
        engine.start("cost_steps", {"steps": n})
    elif shape == "short":
        engine.register_flow("cost_short", SHORT_FLOW)
        for i in range(n):
            engine.start("cost_short", {"i": i})
    else:
        raise SystemExit(f"unknown shape {shape!r}: choose steps or short")
    engine.close()


def run(db: str) -> None:
    print(f"ENGINE {api.__file__}", file=sys.stderr)  # the caller checks which tree ran
    tree = Path(api.__file__).parents[1]
    for module, name in CADENCES:
        if not (tree / (module.replace(".", "/") + ".py")).exists():
            continue  # an older commit (``--against``) without it
        found = importlib.import_module(module)
        if hasattr(found, name):
            setattr(found, name, 3600.0)
    engine = Engine(db, synchronous="NORMAL")
    engine.worker(**QUIET).run(until_idle=True, max_store_failures=1)
    statuses = engine.store.count_by_status()
    engine.close()
    if set(statuses) != {"ENDED_SUCCESS"}:
        raise SystemExit(f"the workload did not end cleanly: {statuses}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["prepare"] and len(sys.argv) == 5:
        prepare(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1:2] == ["run"] and len(sys.argv) == 3:
        run(sys.argv[2])
    else:
        raise SystemExit("usage: cost_workload.py prepare SHAPE N DB | run DB")
