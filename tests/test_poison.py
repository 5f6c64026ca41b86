"""Poison executions: flow code that escapes the worker's error handling or kills its
process ends its execution after a bounded number of attempts; the worker and the other
executions carry on.

The deadlines below only stop a test that would otherwise hang (as main did: these
executions were retried for ever); no assertion is on a duration.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.api import Engine
from store.model import ExecutionRow

GOOD = "def handler(system, this, inputs):\n    this.log('fine')\n    return this.success('done')\n"

KEYBOARD_INTERRUPT = "def handler(system, this, inputs):\n    this.log('before')\n    raise KeyboardInterrupt\n"

EXIT_AT_IMPORT = "import sys\nsys.exit(3)\n\ndef handler(system, this, inputs):\n    pass\n"

UNPRINTABLE = '''
class Unprintable(Exception):
    def __str__(self):
        raise ValueError("cannot render")

def handler(system, this, inputs):
    raise Unprintable()
'''

KILLS_ITS_PROCESS = '''
import os
import signal

def handler(system, this, inputs):
    this.log("about to die")
    os.kill(os.getpid(), signal.SIGKILL)
'''


def run_to_end(engine: Engine, ids: list[str], deadline: float = 60.0, **options: Any) -> list[ExecutionRow]:
    """Run an embedded worker until every execution of ``ids`` ended (or the deadline
    stops a hung test); returns their rows."""
    stop = time.monotonic() + deadline

    def finished() -> bool:
        return all(engine.get(i).ended for i in ids) or time.monotonic() > stop

    engine.worker(lease_seconds=0.5, **options).run(until=finished)
    return [engine.get(i) for i in ids]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (KEYBOARD_INTERRUPT, "KeyboardInterrupt"),
        (EXIT_AT_IMPORT, "flow 'poison' raises SystemExit(3) at module level while loading"),
        (UNPRINTABLE, "Unprintable: <str() of this Unprintable failed: ValueError>"),
    ],
    ids=["keyboard-interrupt", "sys-exit-at-import", "unprintable-error"],
)
def test_flow_code_that_escapes_error_handling_ends_its_execution(engine: Engine, source: str, expected: str) -> None:
    engine.register_flow("poison", source)
    engine.register_flow("good", GOOD)
    poison = engine.start("poison")
    goods = [engine.start("good") for _ in range(3)]
    rows = run_to_end(engine, [poison, *goods], concurrency=2)
    assert rows[0].status == "ENDED_ERROR", rows[0]
    assert expected in (rows[0].message or "")
    assert [r.status for r in rows[1:]] == ["ENDED_SUCCESS"] * 3  # the worker carried on
    assert engine.history(poison)[-1].kind == "ended"


def test_a_flow_that_kills_its_unsupervised_worker_ends_after_three_attempts(
    engine: Engine, engine_argv: Callable[..., list[str]], tmp_path: Path
) -> None:
    """Without a supervisor nobody sees the process die: the next claim of the expired
    lease counts the attempt, and the claim after the third ends the execution."""
    engine.register_flow("poison", KILLS_ITS_PROCESS)
    engine.register_flow("good", GOOD)
    poison = engine.start("poison")
    goods = [engine.start("good") for _ in range(4)]
    deaths = 0
    for _ in range(8):  # main retried for ever: 8 worker processes stop that test
        worker = subprocess.run(
            engine_argv("worker", "--no-supervise", "--until-idle", "--lease", "0.5", "--concurrency", "2"),
            capture_output=True, text=True, timeout=120, check=False,
        )
        if worker.returncode == 0:
            break
        assert worker.returncode == -9, worker.stderr
        deaths += 1
    row = engine.get(poison)
    assert (row.status, deaths) == ("ENDED_ERROR", 3), row
    message = row.message or ""
    for n in (1, 2, 3):
        assert f"activation {n} by worker " in message
    assert message.count("did not finish: its lease expired") == 3
    assert f"engine retry {poison}" in message
    assert [engine.get(g).status for g in goods] == ["ENDED_SUCCESS"] * 4
    assert [e.kind for e in engine.history(poison)] == ["started", "ended"]


def test_a_decision_resets_the_attempt_count(engine: Engine) -> None:
    engine.register_flow("napper", "def handler(system, this, inputs):\n    this.sleep(0.01)\n    this.log('up')\n")
    eid = engine.start("napper")
    claimed = engine.store.claim("someone", 1, 0.0, time.time())  # a worker that dies at once
    assert claimed and engine.get(eid).attempts == 1
    [row] = run_to_end(engine, [eid])
    assert row.status == "ENDED_SUCCESS"
    assert (row.attempts, row.attempt_log) == (0, None)
    assert "activation 1 by worker someone did not finish" not in (row.message or "")


def test_the_limit_is_configurable_through_the_engine_api(engine: Engine) -> None:
    engine.register_flow("good", GOOD)
    eid = engine.start("good")
    for owner in ("a", "b"):  # two activations die (their leases expire at once)
        engine.store.claim(owner, 1, 0.0, time.time())
    [row] = run_to_end(engine, [eid], max_attempts=1)
    assert row.status == "ENDED_ERROR"
    assert "activation 1 by worker a did not finish" in (row.message or "")
    assert "activation 2 by worker b did not finish" in (row.message or "")
    with pytest.raises(ValueError, match="at least 1"):
        engine.worker(max_attempts=0)
