"""Idle ``engine worker`` processes are woken by notices, not by polling.

Real worker processes on a real SQLite file; this test process writes as another user's
script or the CLI would. The workers' safety-net poll is ``--poll 60``: an execution
that ends well before one such interval was started by a notice. An idle worker's CPU
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
from waiting import wait_until

FLOWS = Path(__file__).parent / "flows" / "wake"
#: The workers' safety-net poll: nothing in these tests waits for it.
SAFETY_NET = 60.0


@pytest.fixture
def flows(engine: Engine) -> Engine:
    for name in ("quick", "ask"):
        engine.register_file(FLOWS / f"{name}.py")
    return engine


@pytest.fixture
def worker(engine_argv, spawn):
    """``worker(*args)``: a real ``engine worker`` process (stderr piped); killed at teardown."""
    return lambda *args: spawn(engine_argv("worker", *args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def listeners(db_path: str) -> list[str]:
    """The names of the sockets listening for notices on this database."""
    try:
        return os.listdir(db_path + "-wake")
    except FileNotFoundError:
        return []


def run_quick(engine: Engine, proc: subprocess.Popen[str]) -> float:
    """Start one ``quick`` execution; seconds until it ended (SUCCESS)."""
    began = time.monotonic()
    execution = engine.start("quick")
    wait_until(lambda: engine.get(execution).ended, f"quick execution {execution} ended", proc)
    assert engine.get(execution).status == "ENDED_SUCCESS"
    return time.monotonic() - began


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` (all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_an_idle_worker_runs_a_new_execution_from_another_process_at_once(flows, worker, db_path):
    proc = worker("--poll", str(SAFETY_NET))
    wait_until(lambda: listeners(db_path), "the worker listened for notices", proc)
    run_quick(flows, proc)  # the worker has claimed and gone idle since
    took = [run_quick(flows, proc) for _ in range(3)]
    assert max(took) < SAFETY_NET / 4  # each was claimed on a notice, not at the safety net


def test_an_idle_worker_wakes_at_once_for_a_message_answered_from_another_process(flows, worker, db_path):
    proc = worker("--poll", str(SAFETY_NET))
    execution = flows.start("ask")
    waiting = lambda: flows.store.list_messages(status="waiting", execution_id=execution)  # noqa: E731
    wait_until(lambda: waiting() and flows.get(execution).status == "WAITING", "the execution waited", proc)
    run_quick(flows, proc)  # the worker has claimed since the execution parked, and gone idle
    began = time.monotonic()
    flows.respond(waiting()[0].id, {"value": 7})
    wait_until(lambda: flows.get(execution).ended, "the execution ended after its answer", proc)
    assert time.monotonic() - began < SAFETY_NET / 4
    assert flows.get(execution).output_value == {"value": 7}


def test_an_idle_worker_uses_almost_no_cpu(flows, worker, db_path):
    """Over a few seconds idle (default safety net), the worker's CPU time stays under 1%
    of the wall time; polling every 5 ms, as workers did before notices, took 1.3-1.9%."""
    proc = worker()
    wait_until(lambda: listeners(db_path), "the worker listened for notices", proc)
    run_quick(flows, proc)  # started up, claimed and ran: what is left is idling
    time.sleep(0.5)
    cpu, wall = cpu_seconds(proc.pid), time.monotonic()
    time.sleep(4.0)
    used, elapsed = cpu_seconds(proc.pid) - cpu, time.monotonic() - wall
    assert proc.poll() is None
    assert used < 0.01 * elapsed, f"idle worker used {used:.3f} s of CPU in {elapsed:.1f} s"


def test_many_workers_and_a_killed_one_still_wake_at_once(flows, worker, db_path):
    procs = [worker("--poll", str(SAFETY_NET), "--concurrency", "2") for _ in range(4)]
    wait_until(lambda: len(listeners(db_path)) == 4, "four workers listened for notices")
    before = set(listeners(db_path))
    procs[0].send_signal(signal.SIGKILL)
    procs[0].wait()
    began = time.monotonic()
    executions = [flows.start("quick") for _ in range(12)]
    wait_until(lambda: all(flows.get(e).ended for e in executions), "twelve quick executions ended", procs[1])
    assert time.monotonic() - began < SAFETY_NET / 4
    assert all(flows.get(e).status == "ENDED_SUCCESS" for e in executions)
    assert {flows.get(e).output_value["pid"] for e in executions} <= {p.pid for p in procs[1:]}
    left = set(listeners(db_path))
    assert len(left) == 3 and left < before  # the killed worker's name was deleted by a sender
