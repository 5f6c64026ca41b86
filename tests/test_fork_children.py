"""``engine fork`` and the children of the execution it copies: a child that had not
ended at the cut is created anew for the fork (its own id, the recorded flow version
and inputs) and the fork's replay returns it; a child that had ended is shared
read-only. Real SQLite, the real CLI (CliRunner) and real ``engine worker`` processes.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.api import Engine
from engine.ids import child_id
from connection_support import (  # noqa: F401  (http_server and outside are fixtures)
    engine_process,
    http_server,
    outside,
    process_env,
)
from store.events import ChildCreated, ExecutionControlled, ForkOrigin, WaitStarted

FLOWS = Path(__file__).parent / "flows" / "control" / "basic"


@pytest.fixture
def eng(db_url: str) -> Iterator[Engine]:
    engine = Engine(db_url)
    engine.sync_flows(FLOWS)
    try:
        yield engine
    finally:
        engine.close()


def work(eng: Engine, tmp_path: Path) -> None:
    """Run a real ``engine worker`` process until nothing is left to do now or on a timer."""
    done = subprocess.run(engine_process(eng.store.path, "worker", "--until-idle", "--lease", "2"),
                          cwd=tmp_path, env=process_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def run_until(eng: Engine, condition: Callable[[], bool]) -> None:
    """Run an in-process worker until ``condition`` holds (the deadline only stops a hung test)."""
    stop = time.monotonic() + 60
    eng.worker().run(until=lambda: condition() or time.monotonic() > stop)
    assert condition()


def waiting_original(eng: Engine, tmp_path: Path, seconds: float) -> tuple[str, str, str]:
    """A ``spawner`` waiting for its sleeping second child: (its id, the ended child, the sleeping child)."""
    original = eng.start("spawner", {"seconds": seconds, "note": "original"})
    run_until(eng, lambda: len(eng.store.children(original)) == 2 and all(
        eng.get(i).status == "WAITING" for i in (original, eng.store.children(original)[-1].id)
    ))
    first, later = sorted(eng.store.children(original), key=lambda r: r.created_at)
    assert (first.flow, first.status, later.flow) == ("leaf", "ENDED_SUCCESS", "sleeper")
    return original, first.id, later.id


def cut_after_spawn(eng: Engine, execution_id: str) -> int:
    (seq,) = [e.seq for e in eng.history(execution_id) if e.kind == "log"]
    return seq


def test_a_fork_recreates_the_child_that_had_not_ended_and_owns_it(eng: Engine, invoke, tmp_path: Path) -> None:
    original, ended, sleeping = waiting_original(eng, tmp_path, seconds=0.5)
    assert invoke("cancel", original).exit_code == 0  # the user gives up on the original, and its child with it
    assert eng.get(sleeping).status == "ENDED_CANCELLED"

    at = cut_after_spawn(eng, original)
    out = invoke("fork", original, "--at", str(at), "-i", "note=forked", "--json")
    assert out.exit_code == 0, out.output
    fork = json.loads(out.output)["id"]
    work(eng, tmp_path)

    row = eng.get(fork)
    assert (row.status, row.message) == ("ENDED_SUCCESS", "both children ended"), row.message
    assert row.output_value == {"note": "forked", "first": "ENDED_SUCCESS", "later": "ENDED_SUCCESS"}

    # the fork's own child: id from the fork and the seq, the recorded flow version and inputs
    created = [e for e in eng.history(fork) if isinstance(e.body, ChildCreated)]
    assert [e.body.child_id for e in created] == [ended, child_id(fork, created[1].seq)]
    mine = eng.get(created[1].body.child_id)
    old = eng.get(sleeping)
    assert (mine.parent_id, mine.root_id, mine.status) == (fork, fork, "ENDED_SUCCESS")
    assert (mine.flow, mine.flow_version, mine.input_value) == (old.flow, old.flow_version, old.input_value)
    assert mine.input_value == {"seconds": 0.5}  # -i changes the fork's inputs, not a recorded call's
    waits = [e.body for e in eng.history(fork) if isinstance(e.body, WaitStarted)]
    assert waits[-1].targets == [mine.id]
    assert eng.get(original).status == "ENDED_CANCELLED" and eng.get(sleeping).status == "ENDED_CANCELLED"

    tree = json.loads(invoke("tree", fork, "--json").output)
    assert [c["id"] for c in tree["children"]] == [mine.id]
    assert mine.id in invoke("tree", fork).output

    shown = json.loads(invoke("show", fork, "--json").output)
    assert shown["fork"] == {"source": original, "at_seq": at, "recreated": {sleeping: mine.id},
                             "shared": [ended]}
    text = invoke("show", fork).output
    assert f"{sleeping} -> {mine.id}" in text and "re-created for the fork" in text
    assert ended in text and "shared read-only" in text
    marker = [e.body for e in eng.history(fork) if isinstance(e.body, ExecutionControlled)]
    assert marker[0].fork == ForkOrigin(original, at, {sleeping: mine.id}, [ended])

    replay = invoke("replay", fork)
    assert replay.exit_code == 0 and "consistent" in replay.output, replay.output


def test_a_recreated_child_that_was_created_paused_stays_paused_until_the_fork_runs_it(
    eng: Engine, invoke, tmp_path: Path
) -> None:
    original = eng.start("run_later_then_wait", {})
    run_until(eng, lambda: eng.get(original).status == "WAITING")
    (paused,) = eng.store.children(original)
    assert paused.status == "PAUSED"
    assert invoke("cancel", original).exit_code == 0
    at = cut_after_spawn(eng, original)
    out = invoke("fork", original, "--at", str(at), "-i", "nap=0.01", "--json")
    assert out.exit_code == 0, out.output
    fork = json.loads(out.output)["id"]
    (mine,) = eng.store.children(fork)
    assert mine.status == "PAUSED" and mine.id != paused.id
    work(eng, tmp_path)
    assert eng.get(fork).status == "ENDED_SUCCESS", eng.get(fork).message
    assert eng.get(mine.id).status == "ENDED_SUCCESS"


def test_a_recreated_connection_sends_with_the_forks_own_idempotency_key(outside, http_server, run_cli, tmp_path):
    assert run_cli("connectors", "set", "api", "--type", "REST", "-v", f"url={http_server.url}/json").exit_code == 0
    original = outside.start("later_connect", {"connector": "api"})
    run_until(outside, lambda: outside.get(original).status == "WAITING")  # on a person; the connection PAUSED
    (conn,) = outside.store.children(original)
    assert run_cli("cancel", original).exit_code == 0
    out = run_cli("fork", original, "--at", "2", "--json")  # just after this.connect(..., run=False)
    assert out.exit_code == 0, out.output
    fork = json.loads(out.stdout)["id"]
    (mine,) = outside.store.children(fork)
    assert (mine.type, mine.status, mine.id) == ("CONNECTION", "PAUSED", child_id(fork, 2))
    assert mine.input_value == {**conn.input_value, "idempotency_key": f"{fork}:2"}

    work(outside, tmp_path)  # the fork sends its own message and waits for the answer
    (message,) = outside.store.list_messages(status="waiting", execution_id=fork)
    outside.respond(message.id, {"response": "go"})
    work(outside, tmp_path)
    assert outside.get(fork).status == "ENDED_SUCCESS", outside.get(fork).message
    [request] = http_server.to("/json")  # the original's connection never ran
    assert request["headers"]["Idempotency-Key"] == f"{fork}:2"
