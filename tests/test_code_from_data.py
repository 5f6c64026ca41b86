"""Code comes from flow files, never from data files: a history file's flow source runs only
if it has the hash of the version it claims, and a flow that exits at module level is
refused by ``engine flows sync`` (naming the file) instead of ending the command.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

GREETER = '''
def handler(system, this, inputs):
    this.log("hello", inputs.get("who", "world"))
    return this.success("greeted")
'''


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    return lines[0]


@pytest.fixture
def exported(tmp_path, run_cli) -> Path:
    """``engine export`` of an ended execution of GREETER, as a file."""
    flow = tmp_path / "flows" / "greeter.py"
    flow.parent.mkdir()
    flow.write_text(GREETER)
    result = run_cli("run", str(flow), "--detach")
    execution_id = result.stdout.strip()
    assert run_cli("worker", "--until-idle").exit_code == 0
    history = tmp_path / "h.json"
    history.write_text(run_cli("export", execution_id).stdout)
    return history


def test_a_history_file_replays_the_source_it_was_exported_with(exported, engine_argv, tmp_path):
    proc = run(engine_argv("replay", "--history", str(exported)), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "consistent" in proc.stdout


def test_a_history_file_whose_source_was_changed_is_refused_and_runs_nothing(exported, engine_argv, tmp_path):
    marker = tmp_path / "ran"
    data = json.loads(exported.read_text())
    data["flow"]["source"] = f"open({str(marker)!r}, 'w').close()\n" + data["flow"]["source"]
    exported.write_text(json.dumps(data))
    error = one_line_error(run(engine_argv("replay", "--history", str(exported)), tmp_path))
    version = data["execution"]["flow_version"]
    assert f"history file {exported}: the flow source given for version {version[:12]}" in error
    assert "refusing to run it" in error and "export the history again" in error
    assert not marker.exists()


@pytest.mark.parametrize("exit_line", ["import sys; sys.exit(3)", "raise KeyboardInterrupt", "raise SystemExit"])
def test_flows_sync_refuses_a_flow_that_exits_at_module_level(exit_line, engine_argv, run_cli, tmp_path):
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "exits.py").write_text(f"{exit_line}\n{GREETER}")
    (folder / "fine.py").write_text(GREETER)
    error = one_line_error(run(engine_argv("flows", "sync", str(folder)), tmp_path))
    assert error.startswith(f"Error: flow file {folder / 'exits.py'}: flow 'exits' raises ")
    assert "at module level while loading" in error and "nothing was registered" in error
    listed = run_cli("flows", "ls", "--json")
    assert json.loads(listed.stdout) == []
    (folder / "exits.py").write_text(GREETER)  # fixed: the folder syncs
    assert run(engine_argv("flows", "sync", str(folder)), tmp_path).returncode == 0
    assert sorted(f["name"] for f in json.loads(run_cli("flows", "ls", "--json").stdout)) == ["exits", "fine"]
