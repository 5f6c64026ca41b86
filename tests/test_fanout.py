"""Fan-out: a parent starts many children with ``wait=False`` and joins them with one
``this.wait_for(...)`` (the README demo, ``examples/fanout/``).

The point being tested: a waiting execution holds no thread or process. A thousand
children sleep on durable timers at once while the worker runs a bounded pool of
threads (and at most its warm cache's size of parked handlers, ``engine.warm``). The worker's clock is a manual one (``Worker(clock=...)``): it stands still
until every child is WAITING, so "all of them are waiting now" is a state the test
reaches for certain rather than a race it hopes to win; then it moves on 1 s and
every timer is due.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.api import Engine

FANOUT = Path(__file__).parent.parent / "examples" / "fanout"
N = 1000
CONCURRENCY = 8
#: Threads besides the pool that may exist while the worker runs: the thread running
#: ``Worker.run`` itself, and slack for anything pytest or SQLite might add.
SLACK = 3


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def os_threads() -> int:
    """Threads of this process as the kernel counts them (Linux), else Python's count."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


@pytest.mark.sqlite_only("a manual clock freezes the children's timers; PostgreSQL keeps timers on the database's clock")
def test_fanout_of_a_thousand_children_holds_no_thread_per_waiting_execution(db_url: str) -> None:
    engine = Engine(db_url, synchronous="NORMAL")
    try:
        engine.sync_flows(FANOUT)
        parent_id = engine.start("parent", {"n": N, "seconds": 0.5})
        clock = ManualClock()
        worker = engine.worker(concurrency=CONCURRENCY, clock=clock)
        python_before, os_before = threading.active_count(), os_threads()
        stop = time.monotonic() + 120  # only stops a hung test; nothing asserts on time
        runner = threading.Thread(
            target=worker.run,
            kwargs={"until": lambda: engine.get(parent_id).ended or time.monotonic() > stop},
            daemon=True,
        )
        runner.start()
        most_python = most_os = 0
        try:
            # 1. the frozen clock keeps every timer from firing: wait until all are WAITING
            while engine.store.count_by_status().get("WAITING", 0) < N + 1:
                assert time.monotonic() < stop, f"never all waiting: {engine.store.count_by_status()}"
                assert runner.is_alive(), "the worker stopped early"
                most_python = max(most_python, threading.active_count())
                most_os = max(most_os, os_threads())
                time.sleep(0.01)
            assert engine.store.count_by_status() == {"WAITING": N + 1}
            children = engine.store.children(parent_id)
            assert len(children) == N
            assert all(c.wake_at is not None for c in children)  # each on its durable timer
            assert engine.get(parent_id).wake_at is None  # the parent waits on its children

            # 2. 1001 executions waiting; the process holds only the pool (and the loop thread),
            # besides the handlers the warm cache keeps parked, a bounded number whatever N is
            python_waiting, os_waiting = threading.active_count(), os_threads()
            bound = CONCURRENCY + worker.warm_cache.size + 1 + SLACK
            assert python_waiting - python_before <= bound, (python_before, python_waiting)
            assert os_waiting - os_before <= bound, (os_before, os_waiting)

            # 3. time moves on: every timer is due, the children end, the parent sums them up
            clock.advance(1.0)
            while runner.is_alive() and time.monotonic() < stop:
                most_python = max(most_python, threading.active_count())
                most_os = max(most_os, os_threads())
                runner.join(0.01)
        finally:
            worker.stop()
            runner.join(30)
        assert not runner.is_alive()
        assert most_python - python_before <= bound, (python_before, most_python)
        assert most_os - os_before <= bound, (os_before, most_os)

        parent = engine.get(parent_id)
        assert (parent.status, parent.message) == ("ENDED_SUCCESS", f"{N} children, total {sum(i * i for i in range(N))}")
        assert parent.output_value == {"count": N, "total": sum(i * i for i in range(N))}
        assert engine.store.count_by_status() == {"ENDED_SUCCESS": N + 1}
        history = engine.history(parent_id)
        assert sum(e.kind == "child" for e in history) == N
        assert sum(e.kind == "wait" for e in history) == 1
        assert len(engine.store.dependencies(parent_id)[0]) == N
        assert sorted(c.output_value["value"] for c in engine.store.children(parent_id)) == sorted(i * i for i in range(N))
    finally:
        engine.close()


def test_readme_demo(run_cli: Callable[..., Any]) -> None:
    """`engine run examples/fanout/parent.py -i n=5`, as the README says."""
    result = run_cli("run", str(FANOUT / "parent.py"), "-i", "n=5", "--json")
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)
    assert (row["status"], row["output_value"]) == ("ENDED_SUCCESS", {"count": 5, "total": 0 + 1 + 4 + 9 + 16})
    listed = json.loads(run_cli("ls", "--parent", row["id"], "--json").stdout)
    assert sorted(r["name"] for r in listed) == [f"child {i}" for i in range(5)]
    assert {r["status"] for r in listed} == {"ENDED_SUCCESS"}
