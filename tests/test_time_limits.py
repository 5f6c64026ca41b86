"""Time limits, cancel and Ctrl-C stop a handler that runs flow code without calling
flow_api, in real worker processes sent real signals.

On main these handlers spun for ever: the deadlines (subprocess timeouts,
``wait_for_status``) only stop such a test; nothing asserts a duration.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from engine.api import Engine

SPIN = "def handler(system, this, inputs):\n    x = 0\n    while True:\n        x += 1\n"

SPIN_WITH_LIMIT = "TIMEOUT = 0.2\n\ndef handler(system, this, inputs):\n    x = 0\n    while True:\n        x += 1\n"

SWALLOWS_EVERYTHING = '''TIMEOUT = 0.2

def handler(system, this, inputs):
    x = 0
    while True:
        try:
            x += 1
        except BaseException:
            pass
'''

SLEEPS_IN_C = "import time\n\ndef handler(system, this, inputs):\n    time.sleep(3600)\n"

GOOD = "def handler(system, this, inputs):\n    return this.success('done')\n"


@pytest.fixture
def workers(
    engine_argv: Callable[..., list[str]], spawn: Callable[..., subprocess.Popen[str]]
) -> Callable[..., subprocess.Popen[str]]:
    """``workers(*args)`` starts a real ``engine worker ARGS``; killed at teardown if alive."""
    return lambda *args: spawn(engine_argv("worker", *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_time_limit_stops_handlers_at_their_next_line(
    engine: Engine, engine_argv: Callable[..., list[str]]
) -> None:
    for name, source in (("spin", SPIN), ("limited", SPIN_WITH_LIMIT), ("swallows", SWALLOWS_EVERYTHING), ("good", GOOD)):
        engine.register_flow(name, source)
    spin, limited, swallows = engine.start("spin"), engine.start("limited"), engine.start("swallows")
    goods = [engine.start("good") for _ in range(3)]
    done = subprocess.run(
        engine_argv("worker", "--no-supervise", "--until-idle", "--concurrency", "1", "--activation-timeout", "0.5"),
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    row = engine.get(spin)
    assert row.status == "ENDED_ERROR"
    assert re.search(r"stopped at line [34] after running longer than its time limit of 0\.5 s \(the worker's "
                     r"--activation-timeout\)", row.message or ""), row.message  # in the loop, wherever it was
    assert "set TIMEOUT = SECONDS at the top of the flow or start the worker with --activation-timeout" in (row.message or "")
    for eid in (limited, swallows):  # the flow's TIMEOUT wins; a bare except cannot hold the slot
        row = engine.get(eid)
        assert row.status == "ENDED_ERROR"
        assert "time limit of 0.2 s (TIMEOUT in flow" in (row.message or ""), row.message
    assert [engine.get(g).status for g in goods] == ["ENDED_SUCCESS"] * 3  # one slot, freed each time
    assert [e.kind for e in engine.history(spin)] == ["started", "ended"]


def test_a_bad_timeout_in_a_flow_ends_its_execution(engine: Engine) -> None:
    engine.register_flow("bad", "TIMEOUT = 'soon'\n\ndef handler(system, this, inputs):\n    pass\n")
    eid = engine.start("bad")
    engine.worker().run(until_idle=True)
    row = engine.get(eid)
    assert row.status == "ENDED_ERROR"
    assert row.message == (
        "flow 'bad' sets TIMEOUT = 'soon': it must be a positive number of seconds; fix the flow and start a new execution"
    )


def test_cancel_stops_a_spinning_handler_and_frees_its_slot(
    engine: Engine, workers: Callable[..., subprocess.Popen[str]], run_cli: Callable[..., Result],
    wait_for_status: Callable[..., dict[str, Any]],
) -> None:
    engine.register_flow("spin", SPIN)
    engine.register_flow("good", GOOD)
    spin = engine.start("spin")
    proc = workers("--no-supervise", "--concurrency", "1")
    wait_for_status(spin, "RUNNING", proc=proc)
    assert run_cli("cancel", spin).exit_code == 0
    good = engine.start("good")  # needs the one slot the spinning handler held
    wait_for_status(good, "ENDED_SUCCESS", proc=proc)
    assert engine.get(spin).status == "ENDED_CANCELLED"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130


def test_the_first_ctrl_c_hands_back_what_the_worker_runs(
    engine: Engine, workers: Callable[..., subprocess.Popen[str]], wait_for_status: Callable[..., dict[str, Any]],
) -> None:
    engine.register_flow("spin", SPIN)
    spin = engine.start("spin")
    proc = workers("--no-supervise")
    wait_for_status(spin, "RUNNING", proc=proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "engine: stopping: handing back the executions this worker runs (Ctrl-C again to exit at once)" in err
    row = engine.get(spin)
    assert (row.status, row.lease_owner, row.attempts) == ("QUEUED", None, 0)  # not counted against it


def test_the_second_ctrl_c_exits_at_once(
    engine: Engine, workers: Callable[..., subprocess.Popen[str]], wait_for_status: Callable[..., dict[str, Any]],
) -> None:
    engine.register_flow("sleeper", SLEEPS_IN_C)  # cannot be interrupted before time.sleep returns
    sleeper = engine.start("sleeper")
    proc = workers("--no-supervise")
    wait_for_status(sleeper, "RUNNING", proc=proc)
    proc.send_signal(signal.SIGINT)
    assert proc.stderr is not None
    assert "stopping" in proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "engine: stopped at once" in err  # perhaps before it handed the sleeper back: its lease expires


@pytest.mark.parametrize("supervise", ["--supervise", "--no-supervise"])
def test_engine_run_returns_when_its_own_execution_ends(
    engine: Engine, engine_argv: Callable[..., list[str]], tmp_path: Path, supervise: str
) -> None:
    """Its embedded worker also claimed two executions that would run for an hour: it
    hands them back instead of waiting for them."""
    engine.register_flow("spin", SPIN)
    engine.register_flow("sleeper", SLEEPS_IN_C)
    stuck = [engine.start("spin"), engine.start("sleeper")]
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "quick.py").write_text(GOOD)
    done = subprocess.run(
        engine_argv("run", str(flows / "quick.py"), "--json", supervise), capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "ENDED_SUCCESS"
    for eid in stuck:
        row = engine.get(eid)
        assert (row.status, row.lease_owner, row.attempts) == ("QUEUED", None, 0)
