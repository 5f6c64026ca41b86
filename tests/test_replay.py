"""Every command is recorded when run live and answered from the log on replay.

The pattern: run a flow for real (a worker on a fresh SQLite file), then replay its
history with ``ReplayContext(live=None)`` + ``run_handler``. With no live backend any
command the log cannot answer ends the replay as ``exhausted``; a command that would
touch the store fails on its ``assert self.live``. So a replay that ends like the live
run did, seeing the same values, proves each command was answered from the log.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from engine.flows import FlowLoader
from store.events import CommandFailed, ExecutionEnded, StepCompleted
from store.model import SettingWrite

#: The commands of tests/flows/replay/everything.py in order: (kind, identity).
EVERYTHING_EVENTS = [
    ("started", ""),
    ("log", ""),
    ("output", ""),
    ("output", ""),
    ("output", ""),  # save(output_value=...)
    ("now", ""),
    ("random", ""),
    ("uuid", ""),
    ("step", "add"),
    ("failed", "boom"),
    ("sleep", ""),
    ("timer_fired", ""),
    ("flow_read", "some-name"),
    ("flow_read", "helper"),
    ("child", "helper"),
    ("wait", "<child 1>"),
    ("wait_done", ""),
    ("read", "<child 1>"),
    ("read", "<child 1>"),
    ("child", "helper"),
    ("child", "helper"),
    ("wait", "<child 2>,<child 3>"),
    ("wait_done", ""),
    ("read", "<child 2>"),
    ("read", "<child 3>"),
    ("setting_read", "colour"),
    ("setting_save", "colour"),
    ("setting_read", "colour"),
    ("setting_read", "colour"),
    ("setting_read", "colour"),
    ("setting_save", "temporary"),
    ("setting_delete", "temporary"),
    ("setting_read", "temporary"),
    ("query", ""),
    ("output", ""),
    ("ended", ""),
]


def _identities(history: list[Any]) -> list[tuple[str, str]]:
    """(kind, identity) per event, child ids replaced by <child N> in creation order."""
    children = [e.body.child_id for e in history if e.kind == "child"]
    out = []
    for event in history:
        identity = event.body.identity
        for n, child in enumerate(children, 1):
            identity = identity.replace(child, f"<child {n}>")
        out.append((event.kind, identity))
    return out


@pytest.fixture
def everything(engine, flows_root, tmp_path):
    """Run everything.py live to its end; returns (execution id, what the last activation saw, inputs)."""
    engine.sync_flows(flows_root / "replay")
    engine.start("helper", {"x": 0}, name="pre-existing", run=False)
    inputs = {
        "n": 7,
        "activations": str(tmp_path / "activations"),
        "step_counter": str(tmp_path / "step"),
        "fail_counter": str(tmp_path / "fail"),
    }
    execution_id = engine.start("everything", inputs, name="everything-1")
    loader = FlowLoader(engine.store)
    row = engine.run_until_ended(execution_id, loader=loader)
    assert (row.status, row.message) == ("ENDED_SUCCESS", "everything done"), row.message
    seen = loader.load(row.flow_version).module_globals["SEEN"]
    return execution_id, list(seen), inputs


def test_everything_is_recorded_in_order(engine, everything, run_cli):
    execution_id, _, _ = everything
    history = engine.history(execution_id)
    assert _identities(history) == EVERYTHING_EVENTS
    assert [e.seq for e in history] == list(range(1, len(history) + 1))
    # every command carries the script line that made it, in program order
    lines = [e.line for e in history[1:]]
    assert all(lines) and lines == sorted(lines)

    result = run_cli("history", execution_id, "--json")
    assert result.exit_code == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [(e["seq"], e["kind"], e["line"]) for e in listed] == [(e.seq, e.kind, e.line) for e in history]
    assert all(set(e) >= {"seq", "kind", "at", "data", "line"} for e in listed)
    assert listed[1]["data"]["message"] == "starting 7 mode='test'"


def test_live_values_are_what_the_flow_expects(everything, engine):
    execution_id, seen, _ = everything
    got = {item[0]: item[1:] for item in seen}
    row = engine.get(execution_id)
    assert got["output after set_output"] == ({"a": 1, "b": [1, 2]},)
    assert got["output after save"] == ({"replaced": True},)
    assert got["own fields"] == ((row.input_value, {"replaced": True}, "RUNNING", "everything-1"),)
    assert got["input via get"] == (row.input_value,)
    assert row.created_at - 5 < got["now"][0] < row.ended_at + 5
    assert 0 <= got["random"][0] < 1
    assert re.fullmatch(r"[0-9a-f-]{36}", got["uuid"][0])
    assert got["step"] == ({"sum": 5, "pair": [2, 3]},)
    assert got["step failure"] == ("ValueError", "step failed on purpose")
    assert got["flow handle"] == ("<flow some-name>", "some-name", False, True)
    assert got["child"] == ({"y": 40}, ("ENDED_SUCCESS", "the child"))
    assert got["wait_for"] == ([{"y": 10}, {"y": 20}],)
    assert got["setting before save"] == (False,)
    assert got["setting after save"] == ({"c": "red"}, "the colour", True)
    assert got["setting after delete"] == (False,)
    pre_existing = [r.id for r in engine.store.list_executions(flow="helper") if r.name == "pre-existing"]
    assert got["executions"] == (pre_existing,)
    assert row.output_value == {"replaced": True, "done": True}


def test_pure_replay_sees_the_same_values_and_needs_nothing_live(everything, engine, pure_replay, counter, tmp_path):
    execution_id, live_seen, _ = everything
    # change the world after the run: a replay must not notice, it reads the log
    engine.store.save_setting(SettingWrite("colour", {"c": "blue"}, "changed"))
    engine.register_flow("some-name", "def handler(system, this, inputs):\n    pass\n")
    engine.start("helper", {"x": 0}, name="pre-existing", run=False)
    executions_before = len(engine.store.list_executions())
    counts_before = counter(tmp_path / "step"), counter(tmp_path / "fail")
    assert counts_before == (1, 1)

    replay = pure_replay(execution_id)

    assert replay.decision.kind == "end", replay.decision
    assert (replay.decision.status, replay.decision.message) == ("ENDED_SUCCESS", "everything done")
    assert replay.decision.output_value == engine.get(execution_id).output_value
    assert replay.decision.events == []
    assert replay.globals["SEEN"] == live_seen
    # the whole log was consumed (all but the recorded end)
    assert replay.ctx.pos == len(engine.history(execution_id)) - 1
    # no side effect happened again
    assert (counter(tmp_path / "step"), counter(tmp_path / "fail")) == counts_before
    assert engine.store.get_setting("colour") == ({"c": "blue"}, "changed")
    assert engine.store.get_setting("temporary") is None
    assert len(engine.store.list_executions()) == executions_before


def test_replay_of_every_prefix_stops_at_the_end_of_the_log(everything, engine, pure_replay):
    """Cut the log anywhere before the handler's last command: the pure replay must run out
    of history (it has no way to run a command live) instead of inventing an answer."""
    execution_id, _, _ = everything
    history = engine.history(execution_id)
    assert isinstance(history[-1].body, ExecutionEnded)
    for cut in range(1, len(history) - 1):
        decision = pure_replay(execution_id, history=history[:cut]).decision
        assert decision.kind == "exhausted", (cut, history[cut - 1].kind, decision)
    # without its recorded end the handler still completes: the end is not a command
    decision = pure_replay(execution_id, history=history[:-1]).decision
    assert (decision.kind, decision.status) == ("end", "ENDED_SUCCESS")


@pytest.mark.usefixtures("no_warm_cache")
def test_step_runs_once_while_the_handler_runs_several_times(engine, flows_root, tmp_path, counter):
    engine.sync_flows(flows_root / "replay")
    paths = {k: str(tmp_path / k) for k in ("handler_counter", "step_counter", "other_step_counter")}
    execution_id = engine.start("counted", paths)
    row = engine.run_until_ended(execution_id)
    assert row.status == "ENDED_SUCCESS", row.message
    # started, after the first sleep, after the child, after the second sleep
    assert counter(tmp_path / "handler_counter") == 4
    assert counter(tmp_path / "step_counter") == 1
    assert counter(tmp_path / "other_step_counter") == 1
    assert row.output_value == {"first": 1, "second": 1, "child": {"y": 10}}
    steps = [e for e in engine.history(execution_id) if isinstance(e.body, StepCompleted)]
    assert [(s.body.name, s.body.result) for s in steps] == [("bump", 1), ("bump", 1)]


END_CASES = {
    "return_success": ("return this.success('fine')", "ENDED_SUCCESS", "fine"),
    "success_without_return": ("this.success('also fine')\n    this.log('never')", "ENDED_SUCCESS", "also fine"),
    "return_none": ("this.log('x')", "ENDED_SUCCESS", None),
    "error": ("return this.error('it broke')", "ENDED_ERROR", "it broke"),
    "end_default": ("this.end()", "ENDED_SUCCESS", None),
    "end_error": ("this.end('error', 'by end')", "ENDED_ERROR", "by end"),
    "end_cancelled": ("this.end('cancelled', 'stop')", "ENDED_CANCELLED", "stop"),
}


@pytest.mark.parametrize("case", sorted(END_CASES))
def test_each_way_to_end_is_recorded_and_replayed(case, engine, pure_replay):
    body, status, message = END_CASES[case]
    source = f"def handler(system, this, inputs):\n    this.set_output(case={case!r})\n    {body}\n"
    engine.register_flow("ender", source)
    execution_id = engine.start("ender")
    row = engine.run_until_ended(execution_id)
    assert (row.status, row.message) == (status, message)
    history = engine.history(execution_id)
    ended = history[-1].body
    assert isinstance(ended, ExecutionEnded)
    assert (ended.status, ended.message, ended.output_value) == (status, message, {"case": case})
    # the end records the line of the call that ended it (none when the handler just returned)
    assert history[-1].line == (0 if case == "return_none" else 3)
    assert [e.body.message for e in history if e.kind == "log"] == (["x"] if case == "return_none" else [])
    replay = pure_replay(execution_id)
    assert (replay.decision.kind, replay.decision.status, replay.decision.message) == ("end", status, message)
    assert replay.decision.line == history[-1].line


def test_step_failure_of_a_flow_defined_exception_replays_the_same_way(engine, pure_replay, tmp_path):
    """A step raising an exception class defined in the flow script: the live run catches it
    with ``except Oops``; the replay must re-raise something that ``except Oops`` catches too,
    or the replayed handler takes another path than the live one."""
    source = (
        "class Oops(Exception):\n"
        "    pass\n"
        "\n"
        "def fails():\n"
        "    raise Oops('custom failure')\n"
        "\n"
        "def handler(system, this, inputs):\n"
        "    try:\n"
        "        this.step(fails)\n"
        "    except Oops as exc:\n"
        "        this.set_output(caught=str(exc))\n"
        "    this.sleep(0.01)\n"
        "    return this.success('caught it')\n"
    )
    engine.register_flow("custom-error", source)
    execution_id = engine.start("custom-error")
    row = engine.run_until_ended(execution_id)
    assert (row.status, row.message, row.output_value) == ("ENDED_SUCCESS", "caught it", {"caught": "custom failure"})
    failed = [e.body for e in engine.history(execution_id) if isinstance(e.body, CommandFailed)]
    assert [(f.failed_identity, f.error.message) for f in failed] == [("fails", "custom failure")]
    replay = pure_replay(execution_id)
    assert (replay.decision.kind, replay.decision.status, replay.decision.message) == ("end", "ENDED_SUCCESS", "caught it")
