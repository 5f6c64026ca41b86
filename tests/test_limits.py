"""Every value has a limit, and going over it is one clear line, never a traceback or a hang.

The limits are declared in ``store/values.py`` (size, nesting, durations) and in the CLI's
option types. Cases that hung on an older engine (a timer that never fires, a commit that
fails at every attempt) run in real ``engine`` processes with a deadline that only stops
a hang; the rest go through the CLI in-process. The flows live in ``tests/flows/limits/``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from store import values
from store.events import CommandFailed, LogRecorded
from store.values import MAX_NESTING, MAX_SECONDS, MAX_VALUE_BYTES

LIMITS = Path(__file__).parent / "flows" / "limits"
SECONDS_RULE = f"must be a number of seconds from 0 to {MAX_SECONDS} (10 years), not "
NESTING_RULE = (
    f"a value nested more than {MAX_NESTING} lists or dicts deep exceeds the nesting limit of {MAX_NESTING}; "
    "flatten it, or store it elsewhere and record a reference to it"
)
SURROGATE_RULE = (
    "text '\\udce9' is not valid Unicode (a lone surrogate, from bytes decoded with errors='surrogateescape'); "
    "decode bytes with errors='replace', or keep them as bytes"
)


def engine_process(engine_argv, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real ``engine`` command in a child process (the deadline only stops a hang)."""
    return subprocess.run(engine_argv(*args), capture_output=True, text=True, timeout=timeout, check=False)


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].strip(), stderr[-3000:]
    return lines[0]


def line_of(flow: str, text: str) -> int:
    lines = (LIMITS / f"{flow}.py").read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line)


def nested_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def run_detached(engine_argv, engine, flow: str, inputs: list[dict[str, Any]]) -> list[str]:
    """Create one execution of ``flow`` per inputs, then let one real worker process run
    them all; it must go idle (an execution retried or waiting for ever would hold it)."""
    engine.sync_flows(LIMITS)
    ids = [engine.start(flow, i) for i in inputs]
    proc = engine_process(engine_argv, "worker", "--until-idle", "--lease", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr[-3000:]
    return ids


# -- durations -------------------------------------------------------------------------------


def test_sleep_outside_the_limits_ends_the_execution_with_one_line(engine_argv, engine):
    proc = engine_process(engine_argv, "run", str(LIMITS / "sleeper.py"), "-i", "seconds=nan")
    assert proc.returncode == 1 and proc.stdout == ""
    line = one_line(proc.stderr)
    execution_id = line.split()[0]
    assert line == (
        f"{execution_id} ENDED_ERROR: InvalidInputError: execution {execution_id}: sleep {SECONDS_RULE}nan "
        f"(line {line_of('sleeper', 'this.sleep')})"
    )

    bad = ["inf", "-inf", -1, 1e12, MAX_SECONDS + 1]
    ids = run_detached(engine_argv, engine, "sleeper", [{"seconds": s} for s in bad])
    for execution_id, seconds in zip(ids, bad):
        row = engine.get(execution_id)
        assert row.status == "ENDED_ERROR", (seconds, row.status)
        assert f"execution {execution_id}: sleep {SECONDS_RULE}{float(seconds)!r}" in row.message
        failed = [e.body for e in engine.history(execution_id) if isinstance(e.body, CommandFailed)]
        assert [(f.failed_command, f.error.type) for f in failed] == [("sleep", "InvalidInputError")]
    longest = engine.start("sleeper", {"seconds": MAX_SECONDS})  # exactly the limit is allowed
    engine.worker().run(until=lambda: engine.get(longest).status in ("WAITING", "ENDED_ERROR"))
    assert engine.get(longest).status == "WAITING" and engine.get(longest).wake_at is not None


def test_refused_durations_are_recorded_so_the_replay_agrees(run_cli, engine):
    result = run_cli("run", str(LIMITS / "durations.py"))
    assert result.exit_code == 0, result.stderr
    execution_id = result.stdout.split()[0]
    row = engine.get(execution_id)
    assert row.output_value["refused"] == [
        f"InvalidInputError: execution {execution_id}: sleep {SECONDS_RULE}nan",
        f"InvalidInputError: execution {execution_id}: message 'late': timeout {SECONDS_RULE}inf",
        f"InvalidInputError: execution {execution_id}: wait_for: timeout {SECONDS_RULE}1000000000000.0",
    ]
    failed = [e.body for e in engine.history(execution_id) if isinstance(e.body, CommandFailed)]
    child = engine.store.children(execution_id)[0].id
    assert [(f.failed_command, f.failed_identity) for f in failed] == [
        ("sleep", ""), ("message", "late"), ("wait_for", child),
    ]
    assert engine.store.list_messages(execution_id=execution_id) == []


def test_history_and_show_survive_times_recorded_by_an_older_engine(monkeypatch, run_cli, engine):
    """An older engine recorded any sleep; such timers must still be shown, not crash."""
    monkeypatch.setattr(values, "check_seconds", lambda seconds, what: seconds)
    engine.sync_flows(LIMITS)
    ids = [engine.start("sleeper", {"seconds": s}) for s in (1e12, "inf", "nan")]
    engine.worker(concurrency=3).run(until=lambda: all(engine.get(i).status == "WAITING" for i in ids))
    for execution_id in ids:
        for args in (("history", execution_id), ("show", execution_id), ("history", execution_id, "--json")):
            result = run_cli(*args)
            assert result.exit_code == 0, (args, result.stderr[-2000:])
            assert "Traceback" not in result.stderr
    assert re.search(r"sleep\(1e\+12\) +until 10\d{11}\.\d+ \(not a date\)", run_cli("history", ids[0]).stdout)
    assert re.search(r"sleep\(inf\) +until inf \(not a date\)", run_cli("history", ids[1]).stdout)
    assert run_cli("ls").exit_code == 0


# -- nesting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("what", "refusal"), [
    ("output", "output cannot be recorded"),
    ("step", "step 'nested' returned a value that cannot be recorded"),
    ("setting", "setting 'deep' cannot be saved"),
    ("child_input", "inputs for flow 'ok' cannot be recorded"),
])
def test_values_nested_too_deep_are_refused_in_one_line(what, refusal, run_cli, engine):
    at_limit = run_cli("run", str(LIMITS / "deep.py"), "-i", f"what={what}", "-i", f"depth={MAX_NESTING}")
    assert at_limit.exit_code == 0, at_limit.stderr
    for depth in (MAX_NESTING + 1, 400, 5000):
        result = run_cli("run", str(LIMITS / "deep.py"), "-i", f"what={what}", "-i", f"depth={depth}")
        assert result.exit_code == 1
        line = one_line(result.stderr)
        execution_id = line.split()[0]
        assert line.startswith(f"{execution_id} ENDED_ERROR: InvalidInputError: execution {execution_id}: {refusal}: ")
        assert NESTING_RULE in line
    if what == "setting":  # the one at the limit was saved; the refused ones did not replace it
        assert engine.store.get_setting("deep") is not None


def test_a_value_that_contains_itself_is_refused(run_cli):
    result = run_cli("run", str(LIMITS / "deep.py"), "-i", "what=loop")
    assert result.exit_code == 1
    assert f"step 'loop' returned a value that cannot be recorded: {NESTING_RULE}" in one_line(result.stderr)


def test_cli_inputs_nested_too_deep(run_cli, engine):
    ok = str(LIMITS / "ok.py")
    assert run_cli("run", ok, "-i", f"v={nested_json(MAX_NESTING - 1)}").exit_code == 0  # the inputs dict is one level
    before = len(engine.store.list_executions())
    for args in (["-i", f"v={nested_json(MAX_NESTING)}"], ["--inputs", f'{{"v": {nested_json(400)}}}']):
        result = run_cli("run", ok, *args)
        assert result.exit_code == 1
        assert one_line(result.stderr) == f"Error: inputs for flow 'ok' cannot be recorded: {NESTING_RULE}"
    for option in ("-i", "--inputs"):  # deeper than the JSON parser goes
        raw = f"v={nested_json(5000)}" if option == "-i" else f'{{"v": {nested_json(5000)}}}'
        result = run_cli("run", ok, option, raw)
        assert result.exit_code == 2
        assert one_line(result.stderr) == (
            f"Error: Invalid value for {option}: the JSON value is nested too deeply; values may nest at most "
            f"{MAX_NESTING} lists or dicts deep; see `engine run --help`"
        )
    assert len(engine.store.list_executions()) == before


# -- size -------------------------------------------------------------------------------------


def test_message_text_over_the_size_limit_is_refused(run_cli, engine):
    fits = run_cli("run", str(LIMITS / "big_message.py"), "-i", "size=1000")
    assert fits.exit_code == 0, fits.stderr
    result = run_cli("run", str(LIMITS / "big_message.py"), "-i", f"size={MAX_VALUE_BYTES + 1}")
    assert result.exit_code == 1
    line = one_line(result.stderr)
    execution_id = line.split()[0]
    assert line == (
        f"{execution_id} ENDED_ERROR: InvalidInputError: execution {execution_id}: message 'big': its text: "
        f"a value of 16.8 MB exceeds the {MAX_VALUE_BYTES // 2**20} MiB limit for one recorded value; store large "
        f"data elsewhere and record a reference to it (line {line_of('big_message', 'this.message')})"
    )
    assert engine.store.list_messages(execution_id=execution_id) == []


# -- text that is not UTF-8 -------------------------------------------------------------------


def test_text_that_is_not_unicode_in_a_flow(engine_argv, engine):
    kinds = ["output", "step", "log", "raise", "subject"]
    ids = dict(zip(kinds, run_detached(engine_argv, engine, "bad_text", [{"what": k} for k in kinds])))
    refusals = {"output": "output cannot be recorded", "step": "returned a value that cannot be recorded",
                "subject": "message refused: its subject"}
    for what, refusal in refusals.items():
        row = engine.get(ids[what])
        assert row.status == "ENDED_ERROR" and f"{refusal}: {SURROGATE_RULE}" in row.message, (what, row.message)
    assert engine.get(ids["log"]).status == "ENDED_SUCCESS"  # descriptive text is kept, escaped
    logged = next(e.body for e in engine.history(ids["log"]) if isinstance(e.body, LogRecorded))
    assert logged.message == "read caf\\udce9"
    raised = engine.get(ids["raise"])
    assert raised.status == "ENDED_ERROR" and raised.message.startswith("ValueError: no file caf\\udce9")


@pytest.mark.parametrize(("args", "shown"), [
    (("run", "ok", "-i", "what=\udcff"), "what=\\xff"),
    (("run", "ok", "--name", "caf\udce9"), "caf\\xe9"),
    (("ls", "--flow", "\udcff"), "\\xff"),
])
def test_command_line_text_that_is_not_utf8(args, shown, engine_argv, engine):
    engine.sync_flows(LIMITS)
    proc = engine_process(engine_argv, *args)  # argv carries the raw byte, as a shell passes it
    assert proc.returncode == 1 and proc.stdout == ""
    assert one_line(proc.stderr) == (
        f"Error: command-line argument '{shown}' is not valid UTF-8 text; pass text in UTF-8 (check LANG/LC_ALL "
        "and the encoding of the script that runs engine), or binary data as base64"
    )
    assert engine.store.list_executions() == []


# -- files that cannot be flows -------------------------------------------------------------


def test_files_that_cannot_be_flows_are_skipped_with_a_warning(tmp_path, engine_argv, engine):
    folder = tmp_path / "flows"
    (folder / "team").mkdir(parents=True)
    good = "def handler(system, this, inputs):\n    return this.success('fine')\n"
    (folder / "main.py").write_text(good)
    (folder / "team" / "helper.py").write_text(good)
    (folder / "latin.py").write_bytes(b"def handler(system, this, inputs):\n    return this.success('caf\xe9')\n")
    (folder / "bad name!.py").write_text(good)
    bad_folder = os.fsencode(folder) + b"/\xe9quipe"
    os.mkdir(bad_folder)
    for raw in (os.fsencode(folder) + b"/caf\xe9.py", bad_folder + b"/inner.py"):
        with open(raw, "wb") as f:
            f.write(good.encode())

    expected = sorted([
        f"WARNING engine.flows: flow file {folder}/latin.py is not UTF-8 text (byte 0xe9 at position 63); "
        "save it as UTF-8; skipped it",
        "WARNING engine.flows: invalid flow name 'bad name!': use letters, digits, spaces, '_', '-' and '.', "
        f"without path separators or '..' (file {folder}/bad name!.py); skipped it",
        f"WARNING engine.flows: the path of flow file {folder}/caf\\xe9.py is not UTF-8; rename the file "
        "(and its folders) in UTF-8; skipped it",
        f"WARNING engine.flows: the path of flow file {folder}/\\xe9quipe/inner.py is not UTF-8; rename the "
        "file (and its folders) in UTF-8; skipped it",
    ])
    ran = engine_process(engine_argv, "run", str(folder / "main.py"))
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split()[1:] == ["ENDED_SUCCESS:", "fine"]
    assert sorted(ran.stderr.splitlines()) == expected

    synced = engine_process(engine_argv, "flows", "sync", str(folder), "--json")
    assert synced.returncode == 0, synced.stderr
    assert sorted(f["name"] for f in json.loads(synced.stdout)) == ["helper", "main"]
    assert sorted(synced.stderr.splitlines()) == expected

    target = engine_process(engine_argv, "run", str(folder / "latin.py"))  # the file asked for is an error
    assert target.returncode == 1 and target.stdout == ""
    assert one_line(target.stderr) == (
        f"Error: flow file {folder}/latin.py is not UTF-8 text (byte 0xe9 at position 63); save it as UTF-8"
    )
    assert sorted(f.name for f in engine.store.list_flows()) == ["helper", "main"]


# -- numeric options --------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "error"), [
    (("worker", "--concurrency", "0"), "Invalid value for '--concurrency': 0 is not in the range 1<=x<=1024"),
    (("worker", "--lease", "0"), "Invalid value for '--lease': 0.0 is not in the range 0<x<=86400"),
    (("worker", "--lease", "nan"), "Invalid value for '--lease': 'nan' is not a finite number"),
    (("worker", "--lease", "inf"), "Invalid value for '--lease': inf is not in the range 0<x<=86400"),
    (("worker", "--poll", "-1"), "Invalid value for '--poll': -1.0 is not in the range 0<=x<=60"),
    (("worker", "--poll", "nan"), "Invalid value for '--poll': 'nan' is not a finite number"),
    (("dev", ".", "--concurrency", "0"), "Invalid value for '--concurrency': 0 is not in the range 1<=x<=1024"),
    (("ls", "--limit", "-1"), "Invalid value for '--limit': -1 is not in the range x>=0"),
])
def test_numeric_options_out_of_range_are_one_line(args, error, run_cli):
    result = run_cli(*args, "--until-idle") if args[0] == "worker" else run_cli(*args)
    assert result.exit_code == 2 and result.stdout == ""
    assert one_line(result.stderr) == f"Error: {error}; see `engine {args[0]} --help`"


# -- message forms ----------------------------------------------------------------------------


def test_bad_message_forms_name_the_field_and_what_is_expected(run_cli, engine):
    result = run_cli("run", str(LIMITS / "bad_forms.py"))
    assert result.exit_code == 1
    line = one_line(result.stderr)
    execution_id = line.split()[0]
    where = line_of("bad_forms", 'this.message("approve"')
    assert line == (
        f"{execution_id} ENDED_ERROR: InvalidInputError: execution {execution_id}: message 'approve': 'required' "
        f"must be a list of field names, not 5 (line {where})"
    )

    caught = run_cli("run", str(LIMITS / "bad_forms.py"), "-i", "catch=true")
    assert caught.exit_code == 0, caught.stderr
    execution_id = caught.stdout.split()[0]
    prefix = f"InvalidInputError: execution {execution_id}: message"
    assert engine.get(execution_id).output_value["refused"] == [
        f"{prefix} 'form 0': 'required' must be a list of field names, not 5",
        f"{prefix} 'form 1': form field 'a': 'required' must be True or False, not 5",
        f"{prefix} 'form 2': form field 'a': 'label' must be a string, not 7",
        f"{prefix} 'form 3': form field 'a': 'order' must be a number, not 'first'",
        f"{prefix} 'form 4': form field 'a': option 'two' is not an integer",
        f"{prefix} 'form 5': form field 'a': 'options' must be a list of allowed values, not 'abc'",
    ]
    assert engine.store.list_messages(execution_id=execution_id) == []
