"""``engine start/pause/resume/cancel/retry/fork`` on real executions (SQLite in
tmp_path, real workers), through click's CliRunner, including the refusals."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from engine import control
from engine.api import Engine
from engine.arguments import unchecked
from engine.errors import EngineError
from store.events import (
    AttemptStarted,
    ExecutionCancelled,
    ExecutionControlled,
    ExecutionEnded,
    ForkOrigin,
    StepCompleted,
    replay_history,
)
from store.model import Commit
from store.schema import SCHEMA_VERSION
from stores import run_sql

FLOWS = Path(__file__).parent / "flows" / "control"


@pytest.fixture
def eng(db_url: str) -> Iterator[Engine]:
    engine = Engine(db_url)
    engine.sync_flows(FLOWS / "basic")
    engine.sync_flows(FLOWS / "seed")
    try:
        yield engine
    finally:
        engine.close()


def status(eng: Engine, execution_id: str) -> str:
    return eng.get(execution_id).status


def run_until(eng: Engine, *conditions: tuple[str, str], deadline: float = 20.0) -> None:
    """Run a worker until each (id, status) holds; fail (not hang) when one ends
    otherwise or past ``deadline``."""
    stop = time.monotonic() + deadline

    def done() -> bool:
        now = [(eng.get(i), s) for i, s in conditions]
        if any(row.ended and row.status != s for row, s in now):
            return True
        return time.monotonic() > stop or all(row.status == s for row, s in now)

    eng.worker().run(until=done)
    assert all(status(eng, i) == s for i, s in conditions), [(i, status(eng, i), s) for i, s in conditions]


def only_child(eng: Engine, execution_id: str) -> str:
    (child,) = eng.store.children(execution_id)
    return child.id


def kinds(eng: Engine, execution_id: str) -> list[str]:
    return [e.kind for e in eng.history(execution_id)]


def fails(out: Result, *needles: str) -> None:
    assert out.exit_code != 0, out.output
    for needle in needles:
        assert needle in out.output, out.output


# -- start -------------------------------------------------------------------------


def test_start_runs_a_paused_execution(eng: Engine, invoke: Callable[..., Result]) -> None:
    eid = eng.start("leaf", run=False)
    assert status(eng, eid) == "PAUSED"
    out = invoke("start", eid, "--wait")
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == [f"{eid}: PAUSED -> QUEUED", f"{eid} ENDED_SUCCESS: leaf done"]
    control_event = eng.history(eid)[1].body
    assert control_event == ExecutionControlled("start", "PAUSED", "QUEUED")
    fails(invoke("start", eid), f"execution {eid} is ENDED_SUCCESS, not PAUSED")
    fails(invoke("start", "0000000000000000"), "no execution '0000000000000000'")


def test_start_a_paused_execution_another_one_depends_on(eng: Engine, invoke: Callable[..., Result]) -> None:
    paused = eng.start("flow_1", run=False)
    waiter = eng.start("depend_on_found")  # this.dependency(*system.executions(...flow_1...))
    run_until(eng, (waiter, "WAITING"))
    assert status(eng, paused) == "PAUSED"  # not its child: nothing but a user starts it
    assert "waits for:\n└── " + paused in invoke("deps", waiter).output
    assert json.loads(invoke("start", paused, "--json").output)["status"] == "QUEUED"
    assert eng.run_until_ended(waiter).status == "ENDED_SUCCESS"


# -- cancel ------------------------------------------------------------------------


def test_cancel_a_parent_waiting_on_a_sleeping_child(eng: Engine, invoke: Callable[..., Result]) -> None:
    parent = eng.start("waits_on_sleeper")
    run_until(eng, (parent, "WAITING"))
    child = only_child(eng, parent)
    run_until(eng, (child, "WAITING"))
    out = invoke("cancel", parent)
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == [f"{parent}: WAITING -> ENDED_CANCELLED", f"cancelled {parent}", f"cancelled {child}"]
    for eid in (parent, child):
        assert status(eng, eid) == "ENDED_CANCELLED"
        assert isinstance(eng.history(eid)[-1].body, ExecutionCancelled)
    fails(invoke("cancel", parent), "already ended (ENDED_CANCELLED)", "nothing to cancel")
    fails(invoke("cancel", "0000000000000000"), "no execution")


def test_cancelled_child_fails_the_parent_waiting_with_all_succeeded(eng: Engine, invoke: Callable[..., Result]) -> None:
    parent = eng.start("tolerant_parent")
    run_until(eng, (parent, "WAITING"))
    child = only_child(eng, parent)
    run_until(eng, (child, "WAITING"))
    out = json.loads(invoke("cancel", child, "--json").output)
    assert out["cancelled"] == [child] and out["woken"] == [parent]
    row = eng.run_until_ended(parent)
    assert (row.status, row.output_value) == ("ENDED_SUCCESS", {"error": "DependencyFailedError"})


def test_cancel_reaches_live_children_of_an_ended_parent(eng: Engine) -> None:
    parent = eng.start("waits_on_sleeper")
    run_until(eng, (parent, "WAITING"))
    child = only_child(eng, parent)
    control.cancel(eng, parent)
    eng.store.transaction(lambda conn: conn.execute(
        "UPDATE executions SET status = 'WAITING' WHERE id = ?", (child,)))  # as if it had outlived its parent
    assert control.cancel(eng, parent).cancelled == [child]


# -- pause and resume --------------------------------------------------------------


def test_pause_queued_then_resume(eng: Engine, invoke: Callable[..., Result]) -> None:
    eid = eng.start("leaf")
    assert invoke("pause", eid).output.strip() == f"{eid}: QUEUED -> PAUSED"
    eng.worker().run(until_idle=True)
    assert status(eng, eid) == "PAUSED"  # no worker takes it
    fails(invoke("pause", eid), "already PAUSED")
    assert invoke("resume", eid).output.strip() == f"{eid}: PAUSED -> QUEUED"
    assert eng.run_until_ended(eid).status == "ENDED_SUCCESS"
    fails(invoke("pause", eid), f"execution {eid} has already ended (ENDED_SUCCESS) and cannot be paused")
    fails(invoke("resume", eid), "resume continues PAUSED or HALTED executions")
    fails(invoke("pause", "0000000000000000"), "no execution")


def test_a_parent_does_not_undo_a_users_pause(eng: Engine) -> None:
    child = eng.start("leaf")
    control.pause(eng, child)
    parent = eng.start("leaf", run=False)
    eng.store.commit(Commit(parent, None, start=[child]))  # what a parent's .run() or wait on it commits
    assert status(eng, child) == "PAUSED"
    control.resume(eng, child)
    assert status(eng, child) == "QUEUED"


def test_pause_keeps_the_timer_of_a_sleeping_execution(eng: Engine, invoke: Callable[..., Result]) -> None:
    eid = eng.start("sleeper")
    run_until(eng, (eid, "WAITING"))
    due = eng.get(eid).wake_at
    assert json.loads(invoke("pause", eid, "--json").output)["before"] == "WAITING"
    assert (status(eng, eid), eng.get(eid).wake_at) == ("PAUSED", due)
    assert invoke("resume", eid).output.strip() == f"{eid}: PAUSED -> WAITING"
    assert eng.get(eid).wake_at == due
    assert kinds(eng, eid)[-2:] == ["control", "control"]


def test_a_wait_satisfied_while_paused_resumes_queued(eng: Engine, invoke: Callable[..., Result]) -> None:
    parent = eng.start("waits_on_sleeper", {"seconds": 0.2})
    run_until(eng, (parent, "WAITING"))
    child = only_child(eng, parent)
    invoke("pause", parent)
    run_until(eng, (child, "ENDED_SUCCESS"))
    assert status(eng, parent) == "PAUSED"
    assert invoke("resume", parent).output.strip() == f"{parent}: PAUSED -> QUEUED"
    assert eng.run_until_ended(parent).status == "ENDED_SUCCESS"


def test_pause_a_running_execution_at_its_next_commit(eng: Engine, tmp_path: Path, invoke: Callable[..., Result]) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    eid = eng.start("pauses_itself", {"db": eng.store.path, "first": str(first), "second": str(second)})
    run_until(eng, (eid, "PAUSED"))
    assert (first.read_text(), second.exists()) == ("1", False)  # stopped at the step's commit
    step = eng.history(eid)[1].body
    assert isinstance(step, StepCompleted) and "pause requested" in step.result
    assert invoke("resume", eid).output.strip() == f"{eid}: PAUSED -> QUEUED"
    assert eng.run_until_ended(eid).status == "ENDED_SUCCESS"
    assert (first.read_text(), second.read_text()) == ("1", "1")  # the recorded step did not run again


def test_resume_withdraws_a_pause_request(eng: Engine, db_url: str, invoke: Callable[..., Result]) -> None:
    eid = eng.start("leaf")
    assert eng.store.claim("a test", 1, 60.0, time.time()) == [(eid, 1)]  # RUNNING, as if a worker had it
    assert "pause requested" in invoke("pause", eid).output
    assert "pause request withdrawn" in invoke("resume", eid).output
    requested = run_sql(db_url, "SELECT pause_requested FROM executions WHERE id = ?", (eid,))
    assert requested == [(0,)] and status(eng, eid) == "RUNNING"


def test_pause_requested_while_running_takes_effect_at_the_suspension(eng: Engine, tmp_path: Path,
                                                                      invoke: Callable[..., Result]) -> None:
    eid = eng.start("pauses_before_sleep", {"db": eng.store.path, "flag": str(tmp_path / "flag")})
    run_until(eng, (eid, "PAUSED"))
    assert eng.get(eid).wake_at is not None and kinds(eng, eid)[-2:] == ["sleep", "control"]
    assert invoke("resume", eid).output.strip() == f"{eid}: PAUSED -> WAITING"  # its timer kept


@pytest.mark.usefixtures("no_warm_cache")
def test_resume_after_a_nondeterminism_halt_once_the_code_is_fixed(eng: Engine, invoke: Callable[..., Result]) -> None:
    eng.register_file(FLOWS / "v1" / "shifty.py")
    eid = eng.start("shifty")
    halted = eng.run_until_ended(eid)
    assert halted.status == "HALTED" and "nondeterminism at seq 2" in (halted.message or "")
    fails(invoke("pause", eid), "HALTED")
    fails(invoke("start", eid), "not PAUSED", f"engine resume {eid}")

    wrong = eng.register_file(FLOWS / "v3" / "shifty.py").version
    fixed = eng.register_file(FLOWS / "v2" / "shifty.py").version
    out = invoke("resume", eid, "--flow-version", wrong[:10], "--wait")  # a wrong fix halts again
    assert out.exit_code == 1 and f"{eid} HALTED" in out.output
    out = invoke("resume", eid, "--wait")  # the current registered version
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == [f"{eid}: HALTED -> QUEUED (flow version {fixed[:12]})",
                                       f"{eid} ENDED_SUCCESS: fixed shifty done"]
    assert eng.get(eid).flow_version == fixed
    pins = [e.body.flow_version for e in eng.history(eid) if isinstance(e.body, ExecutionControlled)]
    assert pins == [wrong, fixed]
    fails(invoke("resume", eid, "--flow-version", "zzzz"), "matches no versions of flow 'shifty'")


# -- retry -------------------------------------------------------------------------


def test_retry_a_failed_flow_after_fixing_it(eng: Engine, invoke: Callable[..., Result]) -> None:
    eng.register_file(FLOWS / "v1" / "fragile.py")
    eid = eng.start("fragile")
    failed = eng.run_until_ended(eid)
    assert failed.status == "ENDED_ERROR" and "the service is down" in (failed.message or "")
    old_child = only_child(eng, eid)
    fixed = eng.register_file(FLOWS / "v2" / "fragile.py").version

    out = invoke("retry", eid, "--wait", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert (data["id"], data["before"], data["status"], data["attempt"]) == (eid, "ENDED_ERROR", "QUEUED", 2)
    assert (data["final_status"], data["flow_version"]) == ("ENDED_SUCCESS", fixed)
    row = eng.get(eid)
    assert (row.output_value, row.message) == ({"answer": 42}, "fixed")

    events = eng.history(eid)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))  # gap-free, one log
    assert kinds(eng, eid) == ["started", "child", "wait", "wait_done", "failed", "ended",
                               "attempt_started", "child", "wait", "wait_done", "step", "output", "ended"]
    assert events[6].body == AttemptStarted(2, fixed, "ENDED_ERROR")
    assert [type(e.body) for e in replay_history(events)][-1] is ExecutionEnded
    assert len(replay_history(events)) == 7
    kids = [r.id for r in eng.store.children(eid)]
    assert len(kids) == 2 and kids[0] == old_child  # the old attempt's child stays, the new one is new

    points = control.fork_points(events)
    assert list(points) == [1, 2, 4, 5, 7, 8, 10, 11, 12]  # not inside a wait, not at an attempt's end
    assert points[5] == events[0].body.flow_version and points[8] == fixed  # each attempt's own version
    fork = control.fork(eng, eid, 8)
    assert kinds(eng, fork.id) == ["started", "child", "control"] and fork.flow_version == fixed

    fails(invoke("retry", eid), "ended ENDED_SUCCESS", f"engine fork {eid} --at 1")
    fails(invoke("retry", "0000000000000000"), "no execution")


def test_retry_of_a_running_or_waiting_execution_is_refused(eng: Engine, invoke: Callable[..., Result]) -> None:
    eid = eng.start("sleeper")
    run_until(eng, (eid, "WAITING"))
    fails(invoke("retry", eid), "is WAITING and has not ended")


# -- fork --------------------------------------------------------------------------


def test_fork_with_a_changed_input(eng: Engine, invoke: Callable[..., Result]) -> None:
    original = eng.start("two_steps", {"n": 1})
    assert eng.run_until_ended(original).output_value == {"result": 11}
    before = eng.history(original)

    out = invoke("fork", original, "--at", "3", "-i", "n=2", "--wait", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    fork = data["id"]
    assert (data["source"], data["at_seq"], data["final_status"]) == (original, 3, "ENDED_SUCCESS")
    assert eng.get(fork).output_value == {"result": 21}  # first step taken over (1), second run live (20)
    assert eng.get(fork).input_value == {"n": 2} and eng.get(fork).parent_id is None
    # taken over as recorded, without their arguments: they were made with the old input
    assert [e.body for e in eng.history(fork)[1:3]] == [e.body for e in unchecked(before[1:3])]
    assert before[1].body.args is not None and eng.history(fork)[1].body.args is None
    assert eng.history(fork)[3].body == ExecutionControlled("fork", "", "QUEUED", eng.get(original).flow_version,
                                                            f"forked from {original} at seq 3", ForkOrigin(original, 3))
    assert eng.history(original) == before and eng.get(original).output_value == {"result": 11}


def test_fork_refuses_cuts_between_a_command_and_its_outcome(eng: Engine, invoke: Callable[..., Result]) -> None:
    eid = eng.start("napper")
    assert eng.run_until_ended(eid).status == "ENDED_SUCCESS"
    assert kinds(eng, eid) == ["started", "log", "sleep", "timer_fired", "log", "ended"]
    fails(invoke("fork", eid, "--at", "3"), "at seq 3", "between a command and its outcome", "the sleep at seq 3",
          "valid seqs: 1-2, 4-5")
    fails(invoke("fork", eid, "--at", "6"), "ended (ENDED_SUCCESS) at seq 6", "valid seqs: 1-2, 4-5")
    fails(invoke("fork", eid, "--at", "99"), "its log has seqs 1 to 6")
    fails(invoke("fork", "0000000000000000", "--at", "1"), "no execution")
    out = invoke("fork", eid, "--at", "4", "--wait")
    assert out.exit_code == 0, out.output
    forked = out.output.split(":")[0]
    assert kinds(eng, forked) == ["started", "log", "sleep", "timer_fired", "control", "log", "ended"]


# -- the schema --------------------------------------------------------------------


@pytest.mark.sqlite_only("a SQLite file of schema version 1 is migrated")
def test_a_version_1_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    Engine(path).close()
    with sqlite3.connect(path) as conn:  # make it look like a database of schema version 1
        conn.execute("ALTER TABLE executions DROP COLUMN paused_from")
        conn.execute("ALTER TABLE executions DROP COLUMN pause_requested")
        conn.execute("ALTER TABLE executions DROP COLUMN attempts")
        conn.execute("ALTER TABLE executions DROP COLUMN attempt_log")
        conn.execute("DROP TABLE messages")
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    engine = Engine(path)
    try:
        engine.sync_flows(FLOWS / "basic")
        eid = engine.start("leaf")
        control.pause(engine, eid)
        assert engine.get(eid).status == "PAUSED"
    finally:
        engine.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 5
        assert conn.execute("SELECT paused_from FROM executions").fetchall() == [("QUEUED",)]
        assert conn.execute("SELECT count(*) FROM messages").fetchone() == (0,)
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "wait_targets_by_waiter" in indexes  # version 3
        assert conn.execute("SELECT attempts, attempt_log FROM executions").fetchall() == [(0, None)]  # version 4
    conn.close()


def test_python_api_errors_are_engine_errors(eng: Engine) -> None:
    with pytest.raises(EngineError, match="no execution"):
        control.retry(eng, "nope")
