"""Idle ``engine worker`` processes are woken by notices, not by polling.

Real worker processes on a real SQLite file; this test process writes as another user's
script or the CLI would. The workers' safety-net poll is ``--poll 60`` (the most the CLI
takes): no wait of a worker that started at ``spawned`` can end on its own before
``spawned + SAFETY_NET``, so anything the test sees happen by then was started by a
notice, and the test's waits give up then (``before_safety_net``). An idle worker's CPU
time, read from /proc/PID/stat, is compared with the wall time it was idle.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from engine.api import Engine
from waiting import HANG_GUARD, wait_until

pytestmark = pytest.mark.sqlite_only("counts the wake-up sockets in DB-wake/ beside the SQLite file")

FLOWS = Path(__file__).parent / "flows" / "wake"
#: The workers' safety-net poll: nothing in these tests waits for it.
SAFETY_NET = 60.0


def spawned() -> float:
    """The moment before workers start: their first safety-net poll comes SAFETY_NET after it."""
    return time.monotonic()


def before_safety_net(since: float) -> float:
    """The guard for a wait that only a notice can end: the seconds left before the first
    safety-net poll of workers started at ``since`` (a wait still going then fails)."""
    return since + SAFETY_NET - time.monotonic()


@pytest.fixture
def flows(engine: Engine) -> Engine:
    for name in ("quick", "ask"):
        engine.register_file(FLOWS / f"{name}.py")
    return engine


@pytest.fixture
def worker(engine_argv, spawn):
    """``worker(*args)``: a real ``engine worker`` process (stderr piped); killed at teardown."""
    return lambda *args: spawn(engine_argv("worker", *args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def listeners(db_file: str) -> list[str]:
    """The names of the sockets listening for notices on this database."""
    try:
        return os.listdir(db_file + "-wake")
    except FileNotFoundError:
        return []


def run_quick(engine: Engine, proc: subprocess.Popen[str], since: float | None) -> None:
    """Start one ``quick`` execution and see it end (SUCCESS); with ``since``, before the
    safety net of workers started then could have claimed it."""
    execution = engine.start("quick")
    guard = HANG_GUARD if since is None else before_safety_net(since)
    wait_until(lambda: engine.get(execution).ended, f"quick execution {execution} ended", proc, guard=guard)
    assert engine.get(execution).status == "ENDED_SUCCESS"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` (all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_an_idle_worker_runs_a_new_execution_from_another_process_at_once(flows, worker, db_file):
    since = spawned()
    proc = worker("--poll", str(SAFETY_NET))
    wait_until(lambda: listeners(db_file), "the worker listened for notices", proc)
    for _ in range(4):  # after the first, the worker has claimed and gone idle
        run_quick(flows, proc, since)


def test_an_idle_worker_wakes_at_once_for_a_message_answered_from_another_process(flows, worker, db_file):
    since = spawned()
    proc = worker("--poll", str(SAFETY_NET))
    execution = flows.start("ask")
    waiting = lambda: flows.store.list_messages(status="waiting", execution_id=execution)  # noqa: E731
    wait_until(lambda: waiting() and flows.get(execution).status == "WAITING", "the execution waited", proc)
    run_quick(flows, proc, since)  # the worker has claimed since the execution parked, and gone idle
    flows.respond(waiting()[0].id, {"value": 7})
    wait_until(lambda: flows.get(execution).ended, "the execution ended on the notice of its answer", proc,
               guard=before_safety_net(since))
    assert flows.get(execution).output_value == {"value": 7}


def test_an_idle_worker_uses_almost_no_cpu(flows, worker, db_file):
    """Over a few seconds idle (default safety net), the worker's CPU time stays under 1%
    of the wall time; polling every 5 ms, as workers did before notices, took 1.3-1.9%."""
    proc = worker()
    wait_until(lambda: listeners(db_file), "the worker listened for notices", proc)
    run_quick(flows, proc, None)  # started up, claimed and ran: what is left is idling
    time.sleep(0.5)
    cpu, wall = cpu_seconds(proc.pid), time.monotonic()
    time.sleep(4.0)
    used, elapsed = cpu_seconds(proc.pid) - cpu, time.monotonic() - wall
    assert proc.poll() is None
    assert used < 0.01 * elapsed, f"idle worker used {used:.3f} s of CPU in {elapsed:.1f} s"


def test_many_workers_and_a_killed_one_still_wake_at_once(flows, worker, db_file):
    since = spawned()
    procs = [worker("--poll", str(SAFETY_NET), "--concurrency", "2") for _ in range(4)]
    wait_until(lambda: len(listeners(db_file)) == 4, "four workers listened for notices")
    before = set(listeners(db_file))
    procs[0].send_signal(signal.SIGKILL)
    procs[0].wait()
    executions = [flows.start("quick") for _ in range(12)]
    wait_until(lambda: all(flows.get(e).ended for e in executions), "twelve quick executions ended on notices",
               procs[1], guard=before_safety_net(since))
    assert all(flows.get(e).status == "ENDED_SUCCESS" for e in executions)
    assert {flows.get(e).output_value["pid"] for e in executions} <= {p.pid for p in procs[1:]}
    left = set(listeners(db_file))
    assert len(left) == 3 and left < before  # the killed worker's name was deleted by a sender
