"""Crash recovery with real ``engine worker`` processes killed by a real SIGKILL.

Each test creates an execution with ``engine run FILE --detach``, lets a worker process
pick it up, kills the process at a known point, then lets a second worker process
(``--until-idle``) finish the job, and compares the outcome with an uninterrupted run.
Leases are 1 s so recovery after a kill is quick.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
from pathlib import Path

import pytest
from waiting import wait_until

CRASH_FLOWS = Path(__file__).parent / "flows" / "crash"


@pytest.fixture
def start_worker(engine_argv, tmp_path, spawn):
    """``start_worker()``: a real worker process with a 1 s lease; killed at teardown if alive."""
    numbers = itertools.count()

    def start() -> subprocess.Popen[bytes]:
        with open(tmp_path / f"worker{next(numbers)}.log", "wb") as log:
            return spawn(engine_argv("worker", "--lease", "1"), stdout=log, stderr=subprocess.STDOUT)

    return start


def sigkill(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL


def finish_with_second_worker(engine_argv) -> None:
    """Run ``engine worker --until-idle --lease 1`` in a new process until nothing is left."""
    done = subprocess.run(engine_argv("worker", "--until-idle", "--lease", "1"), capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()


def detach(run_cli, flow_file: Path, **inputs: str) -> str:
    args = [arg for k, v in inputs.items() for arg in ("-i", f"{k}={v}")]
    result = run_cli("run", str(flow_file), *args, "--detach")
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def test_durable_sleep_survives_sigkill_of_the_worker(
    run_cli, engine_argv, start_worker, wait_for_status, show, engine, counter, tmp_path
):
    execution_id = detach(
        run_cli, CRASH_FLOWS / "sleepy.py", before=tmp_path / "before", after=tmp_path / "after", sleep="1.5"
    )
    assert show(execution_id)["status"] == "QUEUED"

    first = start_worker()
    waiting = wait_for_status(execution_id, "WAITING", proc=first)
    sigkill(first)
    # the kill happened while the execution waited on its timer (not after it fired)
    assert show(execution_id)["status"] == "WAITING"
    assert counter(tmp_path / "before") == 1 and counter(tmp_path / "after") == 0

    finish_with_second_worker(engine_argv)

    row = show(execution_id)
    assert (row["status"], row["message"]) == ("ENDED_SUCCESS", "slept through it")
    assert row["output_value"] == {"before": 1, "after": 1}
    assert counter(tmp_path / "before") == 1  # the step before the sleep ran exactly once
    assert counter(tmp_path / "after") == 1
    assert row["ended_at"] - waiting["created_at"] >= 1.5  # the timer was honoured, not skipped

    # the same as an uninterrupted run
    clean = engine.start("sleepy", {"before": str(tmp_path / "b2"), "after": str(tmp_path / "a2"), "sleep": 0.01})
    clean_row = engine.run_until_ended(clean)
    assert clean_row.output_value == row["output_value"]
    assert [e.kind for e in engine.history(clean)] == [e.kind for e in engine.history(execution_id)]


def test_kill_inside_a_step_body_reruns_it_and_records_it_once(
    run_cli, engine_argv, start_worker, wait_for_status, show, engine, counter, tmp_path
):
    release = tmp_path / "release"
    execution_id = detach(
        run_cli, CRASH_FLOWS / "blocking.py",
        before=tmp_path / "before", started=tmp_path / "started", release=release,
    )
    first = start_worker()
    wait_until(lambda: counter(tmp_path / "started") == 1, "the step body to start")
    assert show(execution_id)["status"] == "RUNNING"
    sigkill(first)
    assert [e.kind for e in engine.history(execution_id)] == ["started", "step"]

    release.write_text("go")
    finish_with_second_worker(engine_argv)  # claims once the dead worker's 1 s lease expires

    row = show(execution_id)
    assert (row["status"], row["message"]) == ("ENDED_SUCCESS", "released")
    assert counter(tmp_path / "before") == 1  # recorded before the kill: not run again
    assert counter(tmp_path / "started") == 2  # at least once: the killed attempt and the next
    blocks = [e.body for e in engine.history(execution_id) if e.kind == "step" and e.body.name == "block"]
    assert [b.result for b in blocks] == [{"attempt": 2}]  # recorded once
    assert row["output_value"] == {"before": 1, "result": {"attempt": 2}}
    assert [e.kind for e in engine.history(execution_id)] == ["started", "step", "step", "output", "ended"]


@pytest.mark.soak
def test_random_kills_end_like_an_uninterrupted_run(run_cli, engine_argv, start_worker, show, engine, counter, tmp_path):
    """Kill workers at random points of progress (after 1 to 4 more recorded events) until
    the execution ends; compare with a clean run."""
    rng = random.Random(os.environ.get("CRASH_SEED", "1"))
    steps = 60
    (tmp_path / "killed").mkdir()
    (tmp_path / "clean").mkdir()
    execution_id = detach(run_cli, CRASH_FLOWS / "many_steps.py", counters=tmp_path / "killed", steps=str(steps))
    kills = 0
    def ended() -> bool:
        return show(execution_id)["status"] in ("ENDED_SUCCESS", "ENDED_ERROR", "HALTED")

    while not ended() and kills < 30:
        proc = start_worker()
        target = len(engine.history(execution_id)) + rng.randint(1, 4)
        wait_until(lambda: len(engine.history(execution_id)) >= target or ended(), "more recorded events")
        if proc.poll() is None:
            sigkill(proc)
            kills += 1
    assert kills >= 1
    finish_with_second_worker(engine_argv)
    clean = engine.start("many_steps", {"counters": str(tmp_path / "clean"), "steps": steps})
    clean_row = engine.run_until_ended(clean)
    row = show(execution_id)
    assert (row["status"], row["output_value"]) == (clean_row.status, clean_row.output_value)
    assert [e.kind for e in engine.history(execution_id)] == [e.kind for e in engine.history(clean)]
    for i in range(steps):
        assert counter(tmp_path / "killed" / f"step{i}") >= 1
        assert counter(tmp_path / "clean" / f"step{i}") == 1
