"""The core ``engine`` commands through click's CliRunner: run, worker, flows sync,
ls, show, history; their JSON shapes and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ECHO = """
def handler(system, this, inputs):
    this.log("echoing", sorted(inputs))
    this.set_output(**inputs)
    return this.success("echoed")
"""

NAPPER = """
def handler(system, this, inputs):
    this.sleep(0.01)
    this.set_output(napped=True)
"""

ENDINGS = {
    "fails": "def handler(system, this, inputs):\n    return this.error('nope')\n",
    "raises": "def handler(system, this, inputs):\n    raise RuntimeError('boom')\n",
    "cancels": "def handler(system, this, inputs):\n    this.end('cancelled', 'called off')\n",
}

SHOW_KEYS = {
    "id", "flow", "flow_version", "name", "status", "message", "parent_id", "input_value", "output_value",
    "created_at", "ended_at",
}


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    """flows/: echo.py, napper.py, the ENDINGS, and ops/deploy.py (project 'ops')."""
    root = tmp_path / "flows"
    (root / "ops").mkdir(parents=True)
    (root / "echo.py").write_text(ECHO)
    (root / "napper.py").write_text(NAPPER)
    for name, source in ENDINGS.items():
        (root / f"{name}.py").write_text(source)
    (root / "ops" / "deploy.py").write_text(
        "def handler(system, this, inputs):\n"
        "    child = this.flow('echo', target=inputs.get('target', 'prod'))\n"
        "    this.set_output(child=child.get('output_value'))\n"
    )
    (root / "_private.py").write_text("not a flow")
    return root


def ok_json(result):
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return json.loads(result.stdout)


def test_run_with_inputs_prints_the_execution_as_json(run_cli, flows_dir):
    result = run_cli(
        "run", str(flows_dir / "echo.py"),
        "-i", "n=3", "-i", "ratio=0.5", "-i", "flag=true", "-i", "nothing=null",
        "-i", 'obj={"a": [1, 2]}', "-i", "word=hello", "-i", 'quoted="3"', "-i", "empty=", "-i", "eq=a=b",
        "--json",
    )
    data = ok_json(result)
    assert {"id", "flow", "status", "message", "output_value"} <= set(data)
    assert (data["flow"], data["status"], data["message"]) == ("echo", "ENDED_SUCCESS", "echoed")
    assert data["output_value"] == {
        "n": 3, "ratio": 0.5, "flag": True, "nothing": None, "obj": {"a": [1, 2]},
        "word": "hello", "quoted": "3", "empty": "", "eq": "a=b",
    }
    assert data["input_value"] == data["output_value"]


def test_inputs_json_and_pairs_on_top(run_cli, flows_dir):
    data = ok_json(run_cli("run", str(flows_dir / "echo.py"), "--inputs", '{"a": 1, "b": [true]}', "-i", "a=2", "--json"))
    assert data["output_value"] == {"a": 2, "b": [True]}


def test_run_without_json_prints_id_status_message_and_output(run_cli, flows_dir):
    result = run_cli("run", str(flows_dir / "echo.py"), "-i", "x=1")
    assert result.exit_code == 0, result.stderr
    first, *rest = result.stdout.splitlines()
    execution_id, status, message = first.split(" ", 2)
    assert (status, message) == ("ENDED_SUCCESS:", "echoed")
    assert json.loads("\n".join(rest)) == {"x": 1}
    assert ok_json(run_cli("show", execution_id, "--json"))["status"] == "ENDED_SUCCESS"


def test_detach_prints_an_id_and_a_worker_finishes_it(run_cli, flows_dir):
    result = run_cli("run", str(flows_dir / "napper.py"), "--detach")
    assert result.exit_code == 0, result.stderr
    execution_id = result.stdout.strip()
    assert len(result.stdout.splitlines()) == 1 and execution_id.isalnum()
    assert ok_json(run_cli("show", execution_id, "--json"))["status"] == "QUEUED"

    worker = run_cli("worker", "--until-idle")
    assert worker.exit_code == 0, worker.stderr
    shown = ok_json(run_cli("show", execution_id, "--json"))
    assert (shown["status"], shown["output_value"]) == ("ENDED_SUCCESS", {"napped": True})
    assert ok_json(run_cli("run", str(flows_dir / "napper.py"), "--detach", "--json")).keys() == {"id"}


def test_run_a_registered_flow_by_name(run_cli, flows_dir):
    ok_json(run_cli("flows", "sync", str(flows_dir), "--json"))
    data = ok_json(run_cli("run", "echo", "-i", "k=v", "--json"))
    assert (data["flow"], data["output_value"]) == ("echo", {"k": "v"})


@pytest.mark.parametrize("flow, status", [("fails", "ENDED_ERROR"), ("raises", "ENDED_ERROR"), ("cancels", "ENDED_CANCELLED")])
def test_exit_code_is_zero_only_on_success(flow, status, run_cli, flows_dir):
    result = run_cli("run", str(flows_dir / f"{flow}.py"), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == status
    plain = run_cli("run", str(flows_dir / f"{flow}.py"))
    assert plain.exit_code == 1
    assert f" {status}" in plain.stderr


def test_flows_sync_registers_projects_from_sub_folders(run_cli, flows_dir):
    synced = ok_json(run_cli("flows", "sync", str(flows_dir), "--json"))
    projects = {s["name"]: s["project"] for s in synced}
    assert projects == {
        "echo": "default", "napper": "default", "fails": "default", "raises": "default", "cancels": "default",
        "deploy": "ops",
    }
    assert all(s["changed"] for s in synced)
    again = ok_json(run_cli("flows", "sync", str(flows_dir), "--json"))
    assert not any(s["changed"] for s in again)
    assert {s["version"] for s in again} == {s["version"] for s in synced}

    (flows_dir / "echo.py").write_text(ECHO + "\n# edited\n")
    third = {s["name"]: s for s in ok_json(run_cli("flows", "sync", str(flows_dir), "--json"))}
    assert [n for n, s in third.items() if s["changed"]] == ["echo"]

    listed = {f["name"]: f for f in ok_json(run_cli("flows", "ls", "--json"))}
    assert listed.keys() == projects.keys()
    assert listed["deploy"]["project"] == "ops"
    assert listed["echo"]["version"] == third["echo"]["version"]

    deployed = ok_json(run_cli("run", "deploy", "-i", "target=staging", "--json"))
    assert deployed["project"] == "ops"
    assert deployed["output_value"] == {"child": {"target": "staging"}}


def test_flows_sync_of_a_missing_folder_is_an_error(run_cli, tmp_path):
    result = run_cli("flows", "sync", str(tmp_path / "nowhere"))
    assert result.exit_code == 1
    assert "does not exist" in result.stderr


def test_ls_filters_by_status_and_flow(run_cli, flows_dir):
    ids = {}
    for flow in ("echo", "fails", "echo"):
        ids.setdefault(flow, []).append(json.loads(run_cli("run", str(flows_dir / f"{flow}.py"), "--json").stdout)["id"])
    queued = run_cli("run", str(flows_dir / "napper.py"), "--detach").stdout.strip()

    everything = ok_json(run_cli("ls", "--json"))
    assert {e["id"] for e in everything} == {*ids["echo"], *ids["fails"], queued}
    created = [e["created_at"] for e in everything]
    assert created == sorted(created, reverse=True)  # newest first

    assert {e["id"] for e in ok_json(run_cli("ls", "--flow", "echo", "--json"))} == set(ids["echo"])
    assert {e["id"] for e in ok_json(run_cli("ls", "--status", "ENDED_ERROR", "--json"))} == set(ids["fails"])
    assert {e["id"] for e in ok_json(run_cli("ls", "--status", "queued", "--json"))} == {queued}
    assert ok_json(run_cli("ls", "--status", "ENDED_SUCCESS", "--flow", "fails", "--json")) == []
    assert [e["id"] for e in ok_json(run_cli("ls", "--flow", "echo", "--status", "ENDED_SUCCESS", "--json"))] == ids["echo"][::-1]

    table = run_cli("ls")
    assert table.exit_code == 0 and queued in table.stdout and "QUEUED" in table.stdout


def test_show_json_has_the_documented_fields(run_cli, flows_dir):
    data = ok_json(run_cli("run", str(flows_dir / "echo.py"), "--name", "my run", "-i", "a=1", "--json"))
    shown = ok_json(run_cli("show", data["id"], "--json"))
    assert SHOW_KEYS <= set(shown)
    assert shown["id"] == data["id"]
    assert (shown["flow"], shown["name"], shown["status"], shown["message"]) == ("echo", "my run", "ENDED_SUCCESS", "echoed")
    assert len(shown["flow_version"]) == 64
    assert shown["parent_id"] is None
    assert (shown["input_value"], shown["output_value"]) == ({"a": 1}, {"a": 1})
    assert shown["created_at"] <= shown["ended_at"]
    # a unique prefix of the id is enough
    assert ok_json(run_cli("show", data["id"][:10], "--json"))["id"] == data["id"]
    plain = run_cli("show", data["id"])
    assert plain.exit_code == 0 and "ENDED_SUCCESS" in plain.stdout


def test_show_of_a_child_names_its_parent(run_cli, flows_dir):
    ok_json(run_cli("flows", "sync", str(flows_dir), "--json"))
    parent = ok_json(run_cli("run", "deploy", "--json"))
    children = ok_json(run_cli("ls", "--flow", "echo", "--json"))
    assert len(children) == 1
    child = ok_json(run_cli("show", children[0]["id"], "--json"))
    assert (child["parent_id"], child["input_value"]) == (parent["id"], {"target": "prod"})


def test_history_json_lists_events_in_seq_order(run_cli, flows_dir):
    data = ok_json(run_cli("run", str(flows_dir / "napper.py"), "--json"))
    events = ok_json(run_cli("history", data["id"], "--json"))
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert [e["kind"] for e in events] == ["started", "sleep", "timer_fired", "output", "ended"]
    for event in events:
        assert {"seq", "kind", "at", "data"} <= set(event)
        assert event["data"]["kind"] == event["kind"]
    assert events[0]["data"]["flow"] == "napper"
    assert events[1]["data"]["seconds"] == 0.01
    assert events[-1]["data"]["status"] == "ENDED_SUCCESS"
    ats = [e["at"] for e in events]
    assert ats == sorted(ats)
    table = run_cli("history", data["id"])
    assert table.exit_code == 0
    # seq, date, time, kind, ...
    assert [line.split()[3] for line in table.stdout.splitlines()[1:]] == [e["kind"] for e in events]
