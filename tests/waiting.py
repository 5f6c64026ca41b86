"""Waiting in tests for progress, never for time.

Import with ``from waiting import wait_until``: ``tests/`` is on ``sys.path``. The
deadline is a hang guard, many times what the awaited progress needs on a slow machine:
it only stops a hung test and says what never happened; it asserts nothing about speed.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest

#: Seconds before a wait gives up: a hung test fails instead of stalling the suite.
HANG_GUARD = 120.0


def wait_until(
    condition: Callable[[], Any], what: str, proc: subprocess.Popen[Any] | None = None, *, guard: float = HANG_GUARD
) -> None:
    """Poll ``condition()`` until it is true; fail saying ``what`` never happened, or that
    ``proc`` (a worker the test depends on) exited first."""
    stop = time.monotonic() + guard
    while not condition():
        if proc is not None and proc.poll() is not None:
            output = proc.stderr.read() if proc.stderr is not None else ""
            pytest.fail(f"the process exited ({proc.returncode}) before {what}: {output!s}")
        if time.monotonic() > stop:
            pytest.fail(f"{what} never happened (hang guard of {guard:.0f} s)")
        time.sleep(0.01)
