"""Each bad input gets a clear error and loses nothing.

The CLI cases run the real ``engine`` command in a child process: it must print exactly
one line on stderr, nothing on stdout, and exit non-zero; a good execution created in
the same database before the bad input still runs to ENDED_SUCCESS afterwards.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from engine.errors import EngineError
from store.events import CommandFailed, ExecutionEnded

GOOD = """
def handler(system, this, inputs):
    this.log("good one")
    this.set_output(ok=this.step(lambda: 42))
    return this.success("good")
"""

BAD_FLOWS = {
    "syntax_error": "def handler(system, this, inputs)\n    pass\n",
    "no_handler": "def main(system, this, inputs):\n    pass\n",
    "bad_output": "def handler(system, this, inputs):\n    this.set_output(kept=1)\n    this.set_output(x=object())\n",
    "bad_step_result": "def handler(system, this, inputs):\n    this.step(make)\n\ndef make():\n    return object()\n",
    "raises": (
        "def handler(system, this, inputs):\n"
        "    this.log('about to fail')\n"
        "    lookup({})\n"
        "\n"
        "def lookup(table):\n"
        "    return table['missing thing']\n"
    ),
}


def engine_process(engine_argv, *args: str, db: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(engine_argv(*args, db=db), capture_output=True, text=True, timeout=60, check=False)


def one_line_error(proc: subprocess.CompletedProcess[str], stdout: str = "") -> str:
    """The process failed with exactly one line on stderr and only ``stdout`` on stdout; returns the line."""
    assert proc.returncode != 0, proc
    assert proc.stdout == stdout, proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), proc.stderr
    return lines[0]


@pytest.fixture
def good_execution(tmp_path, run_cli, engine):
    """A good execution created (QUEUED) before the bad input; ``check()`` runs a worker
    and asserts it still ends ENDED_SUCCESS with its output."""
    folder = tmp_path / "good"
    folder.mkdir()
    (folder / "good.py").write_text(GOOD)
    created = run_cli("run", str(folder / "good.py"), "--detach")
    assert created.exit_code == 0, created.stderr
    execution_id = created.stdout.strip()

    def check() -> None:
        finished = run_cli("worker", "--until-idle")
        assert finished.exit_code == 0, finished.stderr
        row = engine.get(execution_id)
        assert (row.status, row.message, row.output_value) == ("ENDED_SUCCESS", "good", {"ok": 42})

    check.execution_id = execution_id  # type: ignore[attr-defined]
    return check


def bad_flow_file(tmp_path: Path, case: str) -> Path:
    folder = tmp_path / case
    folder.mkdir()
    path = folder / f"{case}.py"
    path.write_text(BAD_FLOWS[case])
    return path


def run_bad_flow(tmp_path, engine_argv, engine, case: str, stdout: str = ""):
    """``engine run BAD.py``: one line on stderr, exit 1; returns (that line, the execution row)."""
    line = one_line_error(engine_process(engine_argv, "run", str(bad_flow_file(tmp_path, case))), stdout)
    execution_id = line.split()[0]
    row = engine.get(execution_id)
    assert line == f"{row.id} {row.status}: {row.message}"
    return line, row


def test_syntax_error(tmp_path, engine_argv, engine, good_execution):
    line, row = run_bad_flow(tmp_path, engine_argv, engine, "syntax_error")
    assert row.status == "ENDED_ERROR"
    assert "flow 'syntax_error' has a syntax error at line 1" in line
    assert "fix the flow and start a new execution" in line
    ended = engine.history(row.id)[-1].body
    assert isinstance(ended, ExecutionEnded) and ended.error.type.endswith("FlowLoadError")
    good_execution()


def test_flow_without_handler(tmp_path, engine_argv, engine, good_execution):
    line, row = run_bad_flow(tmp_path, engine_argv, engine, "no_handler")
    assert row.status == "ENDED_ERROR"
    assert "flow 'no_handler' has no handler: define `def handler(system, this, inputs):`" in line
    good_execution()


def test_unknown_flow(engine_argv, engine, good_execution):
    before = len(engine.store.list_executions())
    line = one_line_error(engine_process(engine_argv, "run", "unknown-name"))
    assert line.startswith("Error: flow 'unknown-name' does not exist")
    assert "good" in line  # it lists the known flows
    assert "engine flows sync" in line
    assert len(engine.store.list_executions()) == before
    good_execution()


def test_unserialisable_input_is_refused_before_anything_is_created(engine, good_execution):
    before = len(engine.store.list_executions())
    with pytest.raises(EngineError) as caught:
        engine.start("good", {"when": object()})
    message = str(caught.value)
    assert "inputs for flow 'good' cannot be recorded" in message
    assert "a value of type object cannot be recorded" in message
    assert "\n" not in message
    assert len(engine.store.list_executions()) == before
    good_execution()


def test_unserialisable_output_ends_in_error_keeping_what_was_set(tmp_path, engine_argv, engine, good_execution):
    # the output set before the failure is kept, and printed on stdout like any output
    line, row = run_bad_flow(tmp_path, engine_argv, engine, "bad_output", stdout='{\n  "kept": 1\n}\n')
    assert row.status == "ENDED_ERROR"
    assert f"InvalidInputError: execution {row.id}: output cannot be recorded" in line
    assert "a value of type object cannot be recorded" in line
    assert line.endswith("(line 3)")
    assert row.output_value == {"kept": 1}
    good_execution()


def test_unserialisable_step_result_is_a_recorded_failure(tmp_path, engine_argv, engine, good_execution):
    line, row = run_bad_flow(tmp_path, engine_argv, engine, "bad_step_result")
    assert row.status == "ENDED_ERROR"
    assert "step 'make' returned a value that cannot be recorded" in line
    failed = [e.body for e in engine.history(row.id) if isinstance(e.body, CommandFailed)]
    assert [(f.failed_identity, f.error.type) for f in failed] == [("make", "InvalidInputError")]
    good_execution()


def test_handler_that_raises_keeps_its_log_and_traceback(tmp_path, engine_argv, engine, good_execution):
    _, row = run_bad_flow(tmp_path, engine_argv, engine, "raises")
    assert row.status == "ENDED_ERROR"
    assert row.message == "KeyError: 'missing thing' (line 6)"
    history = engine.history(row.id)
    assert [e.kind for e in history] == ["started", "log", "ended"]
    assert history[1].body.message == "about to fail"
    error = history[-1].body.error
    assert (error.type, error.message) == ("KeyError", "'missing thing'")
    traceback = error.traceback
    assert "line 3, in handler" in traceback and "lookup({})" in traceback
    assert "line 6, in lookup" in traceback and "return table['missing thing']" in traceback
    assert traceback.rstrip().endswith("KeyError: 'missing thing'")
    assert "engine/" not in traceback  # only the flow's own frames
    good_execution()


@pytest.mark.parametrize("command", ["show", "history"])
def test_unknown_execution_id(command, engine_argv, good_execution):
    line = one_line_error(engine_process(engine_argv, command, "nope"))
    assert line.startswith("Error: no execution 'nope' in ")
    assert "engine ls" in line
    good_execution()


def test_database_path_that_is_a_directory(tmp_path, engine_argv):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    for args in (["ls"], ["worker", "--until-idle"], ["show", "x"]):
        line = one_line_error(engine_process(engine_argv, *args, db=str(folder)))
        assert line.startswith(f"Error: cannot open database {folder}")
    assert list(folder.iterdir()) == []


def test_database_file_that_is_not_sqlite(tmp_path, engine_argv):
    path = tmp_path / "notes.txt"
    text = textwrap.dedent("""\
        These are my notes, not a database.
        Nothing may change them.
    """) * 50
    path.write_text(text)
    for args in (["ls"], ["worker", "--until-idle"], ["run", "anything"]):
        line = one_line_error(engine_process(engine_argv, *args, db=str(path)))
        assert f"{path}" in line and "not a database" in line
    assert path.read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # no -wal/-shm left behind


def test_bad_inputs_json_is_a_usage_error(run_cli, tmp_path, good_execution):
    (tmp_path / "good" / "other.py").write_text(GOOD)
    for args in (["--inputs", "[1]"], ["--inputs", "{not json"], ["-i", "no-equals-sign"]):
        result = run_cli("run", str(tmp_path / "good" / "other.py"), *args)
        assert result.exit_code == 2
        assert result.stdout == ""
        assert "Error: Invalid value for" in result.stderr
    good_execution()
