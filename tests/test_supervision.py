"""Flow code that kills its own process cannot take the user's command down: ``engine
run`` and ``engine worker`` (supervised, the default outside this test suite) restart
the process that runs handlers and say which execution killed it and what happens next."""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.api import Engine

EXITS = "import os\n\ndef handler(system, this, inputs):\n    this.log('bye')\n    os._exit(3)\n"

KILLS_ITS_PROCESS = "import os, signal\n\ndef handler(system, this, inputs):\n    os.kill(os.getpid(), signal.SIGKILL)\n"

GOOD = "def handler(system, this, inputs):\n    return this.success('done')\n"

SPIN = "def handler(system, this, inputs):\n    x = 0\n    while True:\n        x += 1\n"

DEATH = re.compile(r"^engine: the worker process \d+ died \((?P<how>[^)]*)\) while running (?P<what>.*); starting a new one$")


def deaths(stderr: str) -> list[re.Match[str]]:
    return [m for line in stderr.splitlines() if (m := DEATH.match(line))]


def test_engine_run_survives_a_flow_that_exits_its_process(
    engine: Engine, engine_argv: Callable[..., list[str]], tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "exits.py").write_text(EXITS)
    done = subprocess.run(engine_argv("run", str(flows / "exits.py"), "--supervise"), capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 1, done.stderr  # main: 3, the flow's own exit code, and no word why
    lines = deaths(done.stderr)
    assert [m["how"] for m in lines] == ["process exited with code 3"] * 3
    [eid] = [row.id for row in engine.store.list_executions()]
    assert lines[0]["what"] == f"execution {eid} (flow 'exits', attempt 1 of 3: it runs again)"
    assert lines[1]["what"] == f"execution {eid} (flow 'exits', attempt 2 of 3: it runs again)"
    assert lines[2]["what"] == f"execution {eid} (flow 'exits', attempt 3 of 3: ended ENDED_ERROR, `engine show {eid}` says why)"
    row = engine.get(eid)
    assert row.status == "ENDED_ERROR"
    for n in (1, 2, 3):
        assert re.search(rf"activation {n} by worker \S+ died \(process exited with code 3\)", row.message or "")
    assert f"{eid} ENDED_ERROR: execution {eid} (flow 'exits') ended after 3 activation(s)" in done.stderr


def test_engine_worker_restarts_its_process_and_the_others_succeed(
    engine: Engine, engine_argv: Callable[..., list[str]]
) -> None:
    engine.register_flow("killer", KILLS_ITS_PROCESS)
    engine.register_flow("good", GOOD)
    goods = [engine.start("good") for _ in range(5)]
    killer = engine.start("killer")
    goods += [engine.start("good") for _ in range(5)]
    done = subprocess.run(
        engine_argv("worker", "--until-idle", "--concurrency", "4", "--supervise"), capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = deaths(done.stderr)
    assert [m["how"] for m in lines] == ["process was killed by signal SIGKILL"] * 3
    assert all(killer in m["what"] for m in lines)
    assert f"{killer} (flow 'killer', attempt 3 of 3: ended ENDED_ERROR" in lines[-1]["what"]
    assert engine.get(killer).status == "ENDED_ERROR"
    # a neighbour of the killer's first activation lost one attempt; then the killer ran alone
    assert [engine.get(g).status for g in goods] == ["ENDED_SUCCESS"] * 10


def test_ctrl_c_reaches_the_supervised_worker_once(
    engine: Engine, engine_argv: Callable[..., list[str]], wait_for_status: Callable[..., dict[str, Any]]
) -> None:
    engine.register_flow("spin", SPIN)
    spin = engine.start("spin")
    proc = subprocess.Popen(engine_argv("worker", "--supervise"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_status(spin, "RUNNING", proc=proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.count("engine: stopping: handing back") == 1
    assert not deaths(err)  # stopped, not died: nothing is counted against the execution
    row = engine.get(spin)
    assert (row.status, row.attempts) == ("QUEUED", 0)
