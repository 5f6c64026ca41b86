"""A parent waiting on a sleeping child survives a SIGKILL of its worker process.

Real ``engine`` processes on one SQLite file: the parent is created with
``engine run FILE --detach``, an ``engine worker`` runs it until the child sleeps on its
durable timer, the worker gets SIGKILL, and a new ``engine worker --until-idle --lease 1``
finishes both. The child must exist once, created by exactly one recorded event.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.api import Engine
from waiting import wait_until

PARENT = '''import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    child = this.flow('sleeper', name='the sleeper', seconds=inputs['seconds'])
    this.set_output(child=child.get('output_value'))
    return this.success('parent done')
'''

SLEEPER = '''import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.log('going to sleep')
    this.sleep(inputs['seconds'])
    this.set_output(slept=inputs['seconds'])
    return this.success('slept')
'''

#: The child's sleep: long enough that the kill lands while it waits, even on a busy machine.
SLEEP = 3


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "crash_parent.py").write_text(PARENT)
    (folder / "sleeper.py").write_text(SLEEPER)
    return folder


@pytest.fixture
def workers(
    engine_argv: Callable[..., list[str]], tmp_path: Path, spawn: Callable[..., subprocess.Popen[bytes]]
) -> Callable[..., subprocess.Popen[bytes]]:
    """``workers(env=None)`` starts a real ``engine worker --lease 1``; killed at teardown if alive."""
    numbers = itertools.count()

    def start(env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with open(tmp_path / f"worker{next(numbers)}.log", "wb") as log:
            return spawn(engine_argv("worker", "--lease", "1"), stdout=log, stderr=subprocess.STDOUT,
                         env={**os.environ, **(env or {})})

    return start


def detach(run_cli: Callable[..., Any], flows: Path) -> str:
    result = run_cli("run", str(flows / "crash_parent.py"), "-i", f"seconds={SLEEP}", "--detach")
    assert result.exit_code == 0, result.stderr
    return str(result.stdout.strip())


def finish(engine_argv: Callable[..., list[str]]) -> None:
    done = subprocess.run(
        engine_argv("worker", "--until-idle", "--lease", "1"), capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr.decode()


def assert_finished_once(engine: Engine, parent_id: str) -> None:
    parent = engine.get(parent_id)
    assert (parent.status, parent.message) == ("ENDED_SUCCESS", "parent done")
    assert parent.output_value == {"child": {"slept": SLEEP}}
    created = [e.body for e in engine.history(parent_id) if e.kind == "child"]
    assert len(created) == 1
    sleepers = engine.store.list_executions(flow="sleeper")
    assert [s.id for s in sleepers] == [created[0].child_id]
    child = sleepers[0]
    assert (child.status, child.parent_id, child.name) == ("ENDED_SUCCESS", parent_id, "the sleeper")
    kinds = [e.kind for e in engine.history(child.id)]
    assert kinds.count("sleep") == 1 and kinds.count("timer_fired") == 1


def test_sigkill_while_the_child_sleeps(engine: Engine, flows: Path, run_cli: Callable[..., Any],
                                        workers: Callable[..., subprocess.Popen[bytes]],
                                        engine_argv: Callable[..., list[str]]) -> None:
    parent_id = detach(run_cli, flows)
    worker = workers()

    def child_sleeping() -> bool:
        children = engine.store.children(parent_id)
        return (engine.get(parent_id).status == "WAITING" and len(children) == 1
                and children[0].status == "WAITING" and children[0].wake_at is not None)

    wait_until(child_sleeping, "the child WAITING on its timer", worker)
    os.kill(worker.pid, signal.SIGKILL)
    assert worker.wait(timeout=10) == -signal.SIGKILL
    (child,) = engine.store.children(parent_id)
    assert engine.get(child.id).status == "WAITING", "the timer fired before the kill: the test did not test the crash"
    assert "timer_fired" not in [e.kind for e in engine.history(child.id)]

    finish(engine_argv)
    assert_finished_once(engine, parent_id)


def test_sigkill_before_the_child_creation_is_committed(engine: Engine, flows: Path, run_cli: Callable[..., Any],
                                                        workers: Callable[..., subprocess.Popen[bytes]],
                                                        engine_argv: Callable[..., list[str]]) -> None:
    """The worker dies with the child built but not committed: the replay creates it, once."""
    parent_id = detach(run_cli, flows)
    worker = workers({"ENGINE_FAULT": "child.created:1"})
    assert worker.wait(timeout=60) == -signal.SIGKILL
    assert engine.store.children(parent_id) == []
    assert engine.get(parent_id).status == "RUNNING"  # its lease runs out after 1 s

    finish(engine_argv)
    assert_finished_once(engine, parent_id)
