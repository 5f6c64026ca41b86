"""COMMAND connector with real subprocesses (the test's own Python interpreter)."""

from __future__ import annotations

import shlex
import sys

import pytest

from engine.connectors import ConnectorError, get_connector

PY = sys.executable


def command(timeout: float | None = 10.0, **params: object) -> dict[str, object]:
    return get_connector("COMMAND").run(params, idempotency_key="e:1", timeout=timeout)


def test_stdout_stderr_and_returncode():
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    assert command(args=[PY, "-c", code]) == {"returncode": 3, "stdout": "out\n", "stderr": "err\n"}


def test_stdin_env_and_cwd(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGINE_TEST_INHERITED", "from-worker")
    code = (
        "import os, sys; print(sys.stdin.read().upper(), os.environ['ENGINE_TEST_EXTRA'], "
        "os.environ['ENGINE_TEST_INHERITED'], os.getcwd())"
    )
    out = command(
        args=[PY, "-c", code], stdin="hello", env={"ENGINE_TEST_EXTRA": "x"}, cwd=str(tmp_path)
    )
    assert out["stdout"] == f"HELLO x from-worker {tmp_path}\n"


def test_command_string_is_split_without_a_shell():
    out = command(command=f"{shlex.quote(PY)} -c 'import sys; print(sys.argv[1:])' '$HOME' ';'")
    assert out["stdout"] == "['$HOME', ';']\n"


def test_check_turns_a_failure_into_a_non_retryable_error():
    with pytest.raises(ConnectorError) as caught:
        command(args=[PY, "-c", "import sys; sys.exit('boom')"], check=True)
    assert not caught.value.retryable
    assert caught.value.details["returncode"] == 1
    assert "boom" in caught.value.message


def test_timeout_kills_the_process_group_and_is_retryable(tmp_path):
    # The child starts a grandchild that keeps the pipes open for 30 s, then leaves a mark:
    # the call returns before the mark only if the grandchild was killed with the child.
    mark = tmp_path / "survived"
    grandchild = f"import time; time.sleep(30); open({str(mark)!r}, 'w').close()"
    code = (
        "import subprocess, sys; print('started', flush=True); "
        f"subprocess.run([{PY!r}, '-c', {grandchild!r}])"
    )
    with pytest.raises(ConnectorError) as caught:
        command(timeout=0.5, args=[PY, "-c", code])
    assert not mark.exists(), "the call waited for the grandchild: the process group was not killed"
    assert caught.value.retryable
    assert caught.value.details["stdout"] == "started"


def test_missing_program_is_not_retryable(tmp_path):
    with pytest.raises(ConnectorError) as caught:
        command(args=[str(tmp_path / "no-such-program")])
    assert not caught.value.retryable
    assert "cannot be started" in caught.value.message


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({}, "exactly one of args"),
        ({"args": ["x"], "command": "x"}, "exactly one of args"),
        ({"command": "'unbalanced"}, "quoting"),
        ({"args": []}, "empty"),
        ({"args": ["true"], "cwd": "/no/such/dir"}, "does not exist"),
        ({"args": ["true"], "stdin": 5}, "stdin"),
        ({"args": ["true"], "env": {"A": 1}}, "$.env"),
    ],
)
def test_bad_params(params, problem):
    with pytest.raises(ConnectorError) as caught:
        command(**params)
    assert not caught.value.retryable
    assert problem in caught.value.message
