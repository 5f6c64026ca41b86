"""COMMAND connector: run a program as a subprocess, without a shell."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
from typing import Any

from engine.connectors.base import ConnectorError, ParamSpec, excerpt, parse_params
from engine.connectors.masking import mask_secrets

logger = logging.getLogger(__name__)


class CommandParams(ParamSpec):
    """Parameters of the COMMAND connector."""

    args: list[str] | None = None
    command: str | None = None
    stdin: Any = None  # str or bytes (msgspec has no str | bytes union)
    env: dict[str, str] = {}
    cwd: str | None = None
    check: bool = False


class CommandConnector:
    """Run ``args`` (or ``command`` split with shlex) and capture its output.

    Output: ``{"returncode", "stdout", "stderr"}`` as text (undecodable bytes replaced). A
    non-zero return code is part of the output unless ``check=True``, which makes it a
    non-retryable error. ``env`` is merged over the worker's environment. On timeout the whole
    process group is killed and the error is retryable. ``timeout=None`` means no limit.
    """

    name = "COMMAND"

    def run(
        self, params: dict[str, Any], *, idempotency_key: str, timeout: float | None
    ) -> dict[str, Any]:
        """Run the program and wait for it; see the class docstring."""
        spec = parse_params(self.name, params, CommandParams)
        args = _args(spec)
        program = args[0]
        if spec.cwd is not None and not os.path.isdir(spec.cwd):
            raise ConnectorError(
                f"COMMAND {program}: the working directory {spec.cwd} does not exist; fix cwd",
                retryable=False,
                details={"cwd": spec.cwd},
            )
        stdin = spec.stdin.encode() if isinstance(spec.stdin, str) else spec.stdin
        if stdin is not None and not isinstance(stdin, bytes):
            raise ConnectorError(
                f"COMMAND parameters are invalid: stdin must be a str or bytes, not "
                f"{type(stdin).__name__}",
                retryable=False,
                details={"parameter": "stdin"},
            )
        try:
            completed = run_process(
                args, stdin=stdin, env={**os.environ, **spec.env}, cwd=spec.cwd, timeout=timeout
            )
        except OSError as exc:
            raise ConnectorError(
                f"COMMAND {program} cannot be started: {exc.strerror or exc} (not retryable); "
                "check the program name, the PATH and its permissions",
                retryable=False,
                details={"program": program, "errno": exc.errno},
            ) from None
        except subprocess.TimeoutExpired as exc:
            raise ConnectorError(
                f"COMMAND {program} timed out after {exc.timeout:g}s and was killed (retryable); "
                "raise timeout if it needs longer",
                retryable=True,
                details={
                    "stdout": excerpt(exc.stdout or b""),
                    "stderr": mask_secrets(excerpt(exc.stderr or b"")),
                },
            ) from None
        returncode, stdout, stderr = completed.returncode, completed.stdout, completed.stderr
        logger.debug("COMMAND %s exited with %d", program, returncode)
        if spec.check and returncode != 0:
            raise ConnectorError(
                f"COMMAND {program} exited with code {returncode} (not retryable, check=True); "
                f"stderr: {mask_secrets(excerpt(stderr, 200))}",
                retryable=False,
                details={"returncode": returncode, "stderr": excerpt(stderr)},
            )
        return {
            "returncode": returncode,
            "stdout": stdout.decode("utf-8", errors="replace"),
            "stderr": stderr.decode("utf-8", errors="replace"),
        }


def _args(spec: CommandParams) -> list[str]:
    if (spec.args is None) == (spec.command is None):
        raise ConnectorError(
            "COMMAND parameters are invalid: give exactly one of args (a list) or command "
            "(a string split like a shell would, but run without a shell)",
            retryable=False,
            details={"parameters": ["args", "command"]},
        )
    try:
        args = spec.args if spec.args is not None else shlex.split(spec.command or "")
    except ValueError as exc:
        raise ConnectorError(
            f"COMMAND parameters are invalid: command cannot be split ({exc}); fix its quoting",
            retryable=False,
            details={"parameter": "command"},
        ) from None
    if not args:
        raise ConnectorError(
            "COMMAND parameters are invalid: args/command is empty; name the program to run",
            retryable=False,
            details={"parameters": ["args", "command"]},
        )
    return args


def run_process(
    args: list[str],
    *,
    stdin: bytes | None,
    env: dict[str, str],
    cwd: str | None,
    timeout: float | None,
) -> subprocess.CompletedProcess[bytes]:
    """Run a program in its own session and capture its output.

    Raises:
        OSError: When the program cannot be started.
        subprocess.TimeoutExpired: After killing the whole process group, with the output so far.
    """
    with subprocess.Popen(
        args,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            exc.stdout, exc.stderr = _kill_group(process)
            raise
        except BaseException:
            _kill_group(process)
            raise
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def _kill_group(process: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """Kill the process and everything it started; return what it wrote so far, if it can."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    try:
        return process.communicate(timeout=5)
    except (subprocess.TimeoutExpired, ValueError):  # a daemonised grandchild keeps the pipes
        process.kill()
        return b"", b""
