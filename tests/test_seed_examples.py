"""Every example script of the seed page (``/work/shared/seed/flows-doc.txt``) runs
unchanged and does what the page says, including the failure paths.

The scripts live verbatim in ``tests/flows/seed/`` (one file per example; the page's
fragments, such as the location_inheritance ones, are wrapped in the page's handler).
Each test syncs that folder into a fresh database and runs one main flow with an
embedded worker. Failure paths register a failing version of a child flow under the
same name (``Engine.register_flow``), so the seed script itself stays untouched.

The examples under ``examples/seed/`` (demos for users) are run at the end.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.api import Engine
from store.model import ExecutionRow
from waiting import wait_until

EXAMPLES = Path(__file__).parent.parent / "examples"

FAILING = '''import flow_api

def handler(system, this, inputs):
    return this.error('failed on purpose')
'''

SLOW = '''import flow_api

def handler(system, this, inputs):
    this.sleep(60)
    return this.success('slept')
'''


@pytest.fixture
def seed(engine: Engine, flows_root: Path) -> Engine:
    """The engine with every seed flow registered (sub-folders are projects)."""
    engine.sync_flows(flows_root / "seed")
    return engine


def run(engine: Engine, flow: str, inputs: dict[str, Any] | None = None) -> ExecutionRow:
    """Start ``flow`` and run an embedded worker until it ends."""
    return engine.run_until_ended(engine.start(flow, inputs))


def logs(engine: Engine, execution_id: str) -> list[str]:
    return [e.body.message for e in engine.history(execution_id) if e.kind == "log"]


def kinds(engine: Engine, execution_id: str) -> list[str]:
    return [e.kind for e in engine.history(execution_id)]


def only_child(engine: Engine, parent_id: str) -> ExecutionRow:
    children = engine.store.children(parent_id)
    assert len(children) == 1, children
    return children[0]


def waits_for(engine: Engine, execution_id: str) -> list[str]:
    """The dependency graph's edges out of ``execution_id``: what it waited for."""
    return [target for target, _since in engine.store.dependencies(execution_id)[0]]


def waited_by(engine: Engine, execution_id: str) -> list[str]:
    return [waiter for waiter, _since in engine.store.dependencies(execution_id)[1]]


# -- parent-child relationships and dependencies ------------------------------------------


def test_create_child(seed: Engine) -> None:
    parent = run(seed, "seed_create_child")
    assert (parent.status, parent.message) == ("ENDED_SUCCESS", "all done")
    child = only_child(seed, parent.id)
    assert (child.flow, child.status, child.parent_id, child.root_id) == (
        "my_other_flow_name", "ENDED_SUCCESS", parent.id, parent.id)
    assert child.depth == 1


def test_create_child_failing_uncaught_fails_the_parent(seed: Engine) -> None:
    seed.register_flow("my_other_flow_name", FAILING)
    parent = run(seed, "seed_create_child")
    assert parent.status == "ENDED_ERROR"
    assert parent.message.startswith("DependencyFailedError:"), parent.message
    child = only_child(seed, parent.id)
    assert child.status == "ENDED_ERROR"
    assert child.id in parent.message and "failed on purpose" in parent.message
    ended = seed.history(parent.id)[-1].body
    assert ended.error.type == "DependencyFailedError"


def test_dependency_implicit_run_true(seed: Engine) -> None:
    parent = run(seed, "seed_dependency_implicit")
    assert (parent.status, parent.message) == ("ENDED_SUCCESS", "All done.")
    child = only_child(seed, parent.id)
    assert child.status == "ENDED_SUCCESS"
    assert waits_for(seed, parent.id) == [child.id]
    assert waited_by(seed, child.id) == [parent.id]


def test_dependency_implicit_run_false_then_run_wait(seed: Engine) -> None:
    parent = run(seed, "seed_dependency_implicit_run_later")
    assert (parent.status, parent.message) == ("ENDED_SUCCESS", "All done.")
    child = only_child(seed, parent.id)
    assert child.status == "ENDED_SUCCESS"
    created = next(e.body for e in seed.history(parent.id) if e.kind == "child")
    assert created.run is False
    assert kinds(seed, parent.id)[1:4] == ["child", "child_run", "wait"]
    assert waits_for(seed, parent.id) == [child.id]


def test_dependency_explicit_on_a_paused_child_starts_it(seed: Engine) -> None:
    """``run=False`` then ``this.dependency(child)``: waiting on one's own PAUSED child starts
    it (recorded in the wait), so the example ends 'All done.' as the page says, and the
    dependency edge is stored."""
    parent = run(seed, "seed_dependency_explicit")
    assert (parent.status, parent.message) == ("ENDED_SUCCESS", "All done.")
    child = only_child(seed, parent.id)
    assert child.status == "ENDED_SUCCESS"
    assert waits_for(seed, parent.id) == [child.id]
    wait = next(e.body for e in seed.history(parent.id) if e.kind == "wait")
    assert wait.started == [child.id]


@pytest.mark.parametrize("flow", ["seed_dependency_executions_one_by_one", "seed_dependency_executions_all_at_once"])
def test_dependency_on_executions_found_by_system_executions(seed: Engine, flow: str) -> None:
    """``system.executions(filter_=...)``: Ellipsis is no filter; the caller is not in the result."""
    others = [seed.start("another-flow", name=f"other {i}") for i in range(3)]
    main = run(seed, flow)
    assert (main.status, main.message) == ("ENDED_SUCCESS", "All done.")
    assert sorted(waits_for(seed, main.id)) == sorted(others)
    assert all(seed.get(i).status == "ENDED_SUCCESS" for i in others)
    queried = next(e.body for e in seed.history(main.id) if e.kind == "query")
    assert queried.ids == sorted(others, key=lambda i: (seed.get(i).created_at, i))
    assert main.id not in queried.ids


def test_waiting_on_an_execution_that_waits_for_you_is_refused_not_a_deadlock(seed: Engine) -> None:
    """Run as a child, the seed's 'wait for all executions' example finds its own parent, which
    waits for it: the wait fails with a clear error instead of both waiting for ever, whichever
    of the two registered its wait first."""
    seed.register_flow("starts_the_example", (
        "def handler(system, this, inputs):\n"
        "    this.flow('seed_dependency_executions_all_at_once')\n"
    ))
    parent = run(seed, "starts_the_example")
    # whichever saw the cycle ended first: the other may still be queued when the parent has ended
    child = seed.run_until_ended(only_child(seed, parent.id).id)
    assert parent.status == child.status == "ENDED_ERROR"
    for row in (parent, child):  # one of them saw the cycle; the other failed because of it
        assert "so neither would ever end" in row.message and "DependencyFailedError" in row.message
    outcomes = [e.body for r in (parent, child) for e in seed.history(r.id) if e.kind == "wait_done"]
    assert any(set(done.failures) - set(done.statuses) for done in outcomes)  # recorded: a replay agrees


def test_dependency_one_by_one_fails_at_the_first_failed_execution(seed: Engine) -> None:
    seed.register_flow("failing-flow", FAILING)
    first = seed.start("failing-flow")
    time.sleep(0.01)  # distinct created_at, so 'oldest first' is unambiguous
    later = [seed.start("another-flow") for _ in range(2)]
    main = run(seed, "seed_dependency_executions_one_by_one")
    assert main.status == "ENDED_ERROR"
    assert main.message.startswith("DependencyFailedError:") and first in main.message
    assert waits_for(seed, main.id) == [first]  # it never got to the others
    assert len([e for e in seed.history(main.id) if e.kind == "wait"]) == 1
    assert all(i not in waits_for(seed, main.id) for i in later)


# -- validating flow existence ----------------------------------------------------------


def test_logging_a_flow_handle_shows_its_name_even_if_it_does_not_exist(seed: Engine) -> None:
    row = run(seed, "seed_log_flow_handle")
    assert row.status == "ENDED_SUCCESS"
    assert logs(seed, row.id) == ["<flow some-name>"]
    assert seed.store.get_flow("some-name") is None


def test_validate_flow_exists(seed: Engine) -> None:
    row = run(seed, "seed_validate_flow_exists")
    assert (row.status, row.message) == ("ENDED_SUCCESS", "all done")
    assert logs(seed, row.id) == ["flow exists!"]


def test_validate_flow_does_not_exist(make_db: Callable[..., str], flows_root: Path) -> None:
    engine = Engine(make_db("alone"))
    try:
        engine.register_file(flows_root / "seed" / "seed_validate_flow_exists.py")
        row = run(engine, "seed_validate_flow_exists")
        assert (row.status, row.message) == ("ENDED_ERROR", "flow does not exist!")
        assert logs(engine, row.id) == []
    finally:
        engine.close()


# -- passing values -------------------------------------------------------------------


def test_passing_values_calculator_result_reaches_messenger(seed: Engine) -> None:
    main = run(seed, "seed_passing_values")
    assert (main.status, main.message) == ("ENDED_SUCCESS", "all done")
    calculator, messenger = seed.store.children(main.id)
    assert (calculator.flow, calculator.name) == ("Calculator", "calculate new value")
    assert calculator.input_value == {"initial_value": 42}
    assert calculator.output_value == {"result": 42}
    assert (messenger.flow, messenger.name) == ("Messenger", "create message with result")
    assert messenger.input_value == {"message_value": 42}
    sent = seed.store.list_messages(status="sent")
    assert [(m.execution_id, m.subject, m.message) for m in sent] == [
        (messenger.id, "Message", " The value is: 42")]
    assert waits_for(seed, main.id) == [calculator.id, messenger.id]


def test_passing_a_setting_handle_to_setting_writer(seed: Engine) -> None:
    assert seed.store.get_setting("my-setting") is None
    main = run(seed, "seed_passing_resources")
    assert (main.status, main.message) == ("ENDED_SUCCESS", "all done")
    writer = only_child(seed, main.id)
    assert (writer.flow, writer.name, writer.status) == ("Setting Writer", "write setting", "ENDED_SUCCESS")
    assert writer.input_value == {"setting": {"__engine_ref__": "setting", "name": "my-setting"}}
    assert seed.store.get_setting("my-setting") == ("my value", None)


# -- handling errors ------------------------------------------------------------------


def test_handling_errors_child_succeeds(seed: Engine) -> None:
    row = run(seed, "seed_handling_errors")
    assert (row.status, row.message) == ("ENDED_SUCCESS", "all done")
    assert logs(seed, row.id) == ["my_other_flow_name succeeded"]


def test_handling_errors_child_fails_and_is_caught(seed: Engine) -> None:
    seed.register_flow("my_other_flow_name", FAILING)
    row = run(seed, "seed_handling_errors")
    assert (row.status, row.message) == ("ENDED_SUCCESS", "all done")
    assert logs(seed, row.id) == ["my_other_flow_name failed"]
    assert only_child(seed, row.id).status == "ENDED_ERROR"


# -- immediate execution control, synchronous and asynchronous execution ---------------


def test_run_false_creates_the_child_paused_until_run(seed: Engine) -> None:
    row = run(seed, "seed_immediate_execution_control")
    assert (row.status, row.message) == ("ENDED_SUCCESS", "Manual execution started successfully.")
    history = seed.history(row.id)
    created = next(e.body for e in history if e.kind == "child")
    assert created.run is False and created.flow == "another-flow"
    assert [e.kind for e in history][1:4] == ["child", "child_run", "wait"]
    child = seed.get(created.child_id)
    assert child.status == "ENDED_SUCCESS"
    assert logs(seed, row.id) == ["Flow executed after manual start."]
    # the child was not started before the parent's .run(): its first activation came later
    started = next(e for e in history if e.kind == "child_run")
    assert child.started_at is not None and child.started_at >= started.at


def test_synchronous_execution(seed: Engine) -> None:
    row = run(seed, "seed_synchronous_execution")
    assert (row.status, row.message) == ("ENDED_SUCCESS", "Flow executed synchronously")
    assert logs(seed, row.id) == ["Synchronous execution completed successfully!"]
    child = only_child(seed, row.id)
    assert waits_for(seed, row.id) == [child.id]
    reads = [e.body for e in seed.history(row.id) if e.kind == "read"]
    assert [r.fields for r in reads] == [{"status": "ENDED_SUCCESS"}]


def test_synchronous_execution_failing_child_raises_at_the_wait(seed: Engine) -> None:
    """With wait=True a failed child raises DependencyFailedError at this.flow(), so the
    script's own status check is never reached; uncaught, it fails the parent."""
    seed.register_flow("sync_flow", FAILING)
    row = run(seed, "seed_synchronous_execution")
    assert row.status == "ENDED_ERROR"
    assert row.message.startswith("DependencyFailedError:"), row.message
    assert logs(seed, row.id) == []


def test_asynchronous_execution(seed: Engine) -> None:
    row = run(seed, "seed_asynchronous_execution")
    assert (row.status, row.message) == ("ENDED_SUCCESS", "Flow executed asynchronously")
    assert logs(seed, row.id) == ["Async flow triggered."]
    child = only_child(seed, row.id)
    assert seed.run_until_ended(child.id).status == "ENDED_SUCCESS"
    assert waits_for(seed, row.id) == []  # wait=False: no dependency
    assert "wait" not in kinds(seed, row.id)


def test_wait_for_all_ended(seed: Engine) -> None:
    row = run(seed, "seed_wait_for_multiple")
    assert (row.status, row.message) == ("ENDED_SUCCESS", "Synchronized all async flows successfully")
    assert logs(seed, row.id) == ["All children executions have completed."]
    children = seed.store.children(row.id)
    assert [c.flow for c in children] == ["flow_1", "sync_flow"]
    assert all(c.status == "ENDED_SUCCESS" for c in children)
    assert sorted(waits_for(seed, row.id)) == sorted(c.id for c in children)


def test_wait_for_all_ended_with_a_failed_child_still_succeeds(seed: Engine) -> None:
    seed.register_flow("sync_flow", FAILING)
    row = run(seed, "seed_wait_for_multiple")
    assert (row.status, row.message) == ("ENDED_SUCCESS", "Synchronized all async flows successfully")
    assert logs(seed, row.id) == ["All children executions have completed."]
    statuses = {c.flow: c.status for c in seed.store.children(row.id)}
    assert statuses == {"flow_1": "ENDED_SUCCESS", "sync_flow": "ENDED_ERROR"}
    done = next(e.body for e in seed.history(row.id) if e.kind == "wait_done")
    assert sorted(done.statuses.values()) == ["ENDED_ERROR", "ENDED_SUCCESS"]


def test_wait_for_first_ended(seed: Engine, flows_root: Path) -> None:
    """The seed's wait_for example with the option its comment offers: FIRST_ENDED."""
    source = (flows_root / "seed" / "seed_wait_for_multiple.py").read_text()
    assert "return_when='ALL_ENDED'" in source
    seed.register_flow("seed_wait_for_first", source.replace("return_when='ALL_ENDED'", "return_when='FIRST_ENDED'"))
    seed.register_flow("sync_flow", SLOW)
    row = run(seed, "seed_wait_for_first")
    assert (row.status, row.message) == ("ENDED_SUCCESS", "Synchronized all async flows successfully")
    quick, slow = seed.store.children(row.id)
    assert (quick.flow, quick.status) == ("flow_1", "ENDED_SUCCESS")
    assert slow.flow == "sync_flow" and not seed.get(slow.id).ended
    done = next(e.body for e in seed.history(row.id) if e.kind == "wait_done")
    assert done.statuses == {quick.id: "ENDED_SUCCESS"}


# -- connectors -----------------------------------------------------------------------


def _git(*args: str, cwd: Path) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd),
           "PATH": "/usr/bin:/bin:/usr/local/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def test_connect_git_get(seed: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page's URL is rewritten to a local repository through git's own configuration,
    so the example runs unchanged with no network."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git("init", "--quiet", "-b", "main", cwd=repo)
    (repo / "README.md").write_text("hello\n")
    (repo / "src").mkdir()
    (repo / "src" / "app.py").write_text("print('hi')\n")
    _git("add", ".", cwd=repo)
    _git("commit", "--quiet", "-m", "first", cwd=repo)
    sha = _git("rev-parse", "HEAD", cwd=repo).strip()
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text(f'[url "file://{repo}"]\n\tinsteadOf = https://example.com/path/to/repo.git\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")

    row = run(seed, "seed_connect_git")
    assert (row.status, row.message) == ("ENDED_SUCCESS", "all done"), row.message
    connection = only_child(seed, row.id)
    assert (connection.type, connection.flow, connection.status) == ("CONNECTION", "GIT", "ENDED_SUCCESS")
    expected = {"commit": sha, "files": ["README.md", "src/app.py"]}
    assert connection.output_value == expected
    assert logs(seed, row.id) == [repr(expected)]


# -- location inheritance ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("flow", "child_flow", "project"),
    [
        ("seed_location_created_by", "archive-log-flow", "operations"),  # the parent's project
        ("seed_location_default", "archive-log-flow", "default"),
        ("seed_location_wrapped_resource", "api-data-processing-flow", "equipment"),  # the flow's project
        ("seed_location_resource", "equipment-operations-flow", "equipment"),
    ],
)
def test_location_inheritance(seed: Engine, run_cli: Callable[..., Any], flow: str, child_flow: str, project: str) -> None:
    parent = run(seed, flow)
    assert parent.status == "ENDED_SUCCESS", parent.message
    assert parent.project == "operations"  # synced from seed/operations/
    assert seed.store.get_flow(child_flow).project == "equipment"
    child = only_child(seed, parent.id)
    assert (child.flow, child.status, child.project) == (child_flow, "ENDED_SUCCESS", project)
    listed = json.loads(run_cli("ls", "--project", project, "--json").stdout)
    assert child.id in [r["id"] for r in listed]
    assert all(r["project"] == project for r in listed)
    others = json.loads(run_cli("ls", "--project", "nowhere", "--json").stdout)
    assert others == []


def test_location_inheritance_on_a_child_created_paused(seed: Engine) -> None:
    """The natural use of ``run(location_inheritance=...)``: the child starts in that project."""
    seed.register_flow("paused_relocated", """import flow_api

def handler(system, this, inputs):
    this.flow('archive-log-flow', run=False).run(location_inheritance='default')
""", project="operations")
    parent = run(seed, "paused_relocated")
    assert (parent.status, parent.project) == ("ENDED_SUCCESS", "operations")
    child = only_child(seed, parent.id)
    assert (child.status, child.project) == ("ENDED_SUCCESS", "default")


def test_flows_synced_from_folders_belong_to_projects(seed: Engine) -> None:
    projects = {f.name: f.project for f in seed.store.list_flows()}
    assert projects["seed_create_child"] == "default"
    assert projects["seed_location_default"] == "operations"
    assert projects["archive-log-flow"] == "equipment"


# -- every seed example replays from its log alone -------------------------------------------


@pytest.mark.parametrize("flow", [
    "seed_create_child", "seed_dependency_implicit", "seed_dependency_implicit_run_later",
    "seed_log_flow_handle", "seed_validate_flow_exists", "seed_passing_values", "seed_passing_resources",
    "seed_handling_errors", "seed_immediate_execution_control", "seed_synchronous_execution",
    "seed_asynchronous_execution", "seed_wait_for_multiple", "seed_location_created_by", "seed_location_default",
    "seed_location_wrapped_resource", "seed_location_resource",
])
def test_seed_example_replays_deterministically(seed: Engine, pure_replay: Callable[..., Any], flow: str) -> None:
    """A replay with no live backend (nothing may touch the store) ends as the live run did."""
    row = run(seed, flow)
    assert row.status == "ENDED_SUCCESS", row.message
    replay = pure_replay(row.id)
    assert replay.decision.kind == "end", replay.decision
    assert (replay.decision.status, replay.decision.message) == (row.status, row.message)
    assert replay.decision.events == []


# -- examples/seed: the demos for users ------------------------------------------------------


@pytest.fixture
def demos(engine: Engine) -> Engine:
    engine.sync_flows(EXAMPLES / "seed")
    return engine


def test_every_demo_says_what_it_shows_and_how_to_run_it() -> None:
    for path in sorted((EXAMPLES / "seed").glob("*.py")) + sorted((EXAMPLES / "fanout").glob("*.py")):
        text = path.read_text()
        assert text.startswith('"""'), path
        assert "engine " in text.split('"""')[1], f"{path} does not say how to run it"


@pytest.mark.parametrize(
    ("flow", "message"),
    [
        ("passing_values", "all done"),
        ("passing_resources", "all done"),
        ("handling_errors", "all done"),
        ("wait_for_multiple", "Synchronized all async flows successfully"),
    ],
)
def test_demo_runs(demos: Engine, flow: str, message: str) -> None:
    row = run(demos, flow)
    assert (row.status, row.message) == ("ENDED_SUCCESS", message)


def test_demo_handling_errors_logs_the_caught_failure(demos: Engine) -> None:
    row = run(demos, "handling_errors")
    assert logs(demos, row.id) == ["my_other_flow_name failed"]


def test_demo_approval_continues_with_the_answer_given_on_the_command_line(
    demos: Engine, run_cli: Callable[..., Any]
) -> None:
    result = run_cli("run", str(EXAMPLES / "seed" / "approval.py"), "-i", "amount=250", "--detach")
    assert result.exit_code == 0, result.stderr
    execution_id = result.stdout.strip()
    worker = demos.worker()
    thread = threading.Thread(
        target=worker.run, kwargs={"until": lambda: demos.get(execution_id).ended}, daemon=True
    )
    thread.start()
    try:
        wait_until(lambda: demos.store.list_messages(status="waiting", execution_id=execution_id),
                   "the approval message appearing")
        (message,) = demos.store.list_messages(status="waiting", execution_id=execution_id)
        assert "250" in message.message
        refused = run_cli("messages", "respond", message.id, "-f", "approve=maybe")
        assert refused.exit_code != 0 and "approve" in refused.stderr
        answered = run_cli("messages", "respond", message.id, "-f", "approve=true", "-f", "comment=fine")
        assert answered.exit_code == 0, answered.stderr
        thread.join(30)
        assert not thread.is_alive()
    finally:
        worker.stop()
        thread.join(5)
    row = demos.get(execution_id)
    assert (row.status, row.output_value) == ("ENDED_SUCCESS", {"approved": True, "comment": "fine", "amount": 250})
