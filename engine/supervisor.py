"""Supervision: handlers run in a child process that flow code cannot take the user's
command down with.

``engine worker`` and ``engine run`` start the real worker as a child process and
watch it. When the child dies (a flow called ``os._exit``, killed its process, or
crashed the interpreter) the supervisor finds the executions its leases held, notes on
each what happened (``engine.attempts``), ends those that have used up their attempts,
hands the others back at once, says so on stderr in one line, and starts a new child.
Ctrl-C and SIGTERM go to the child (in its own process group, so a terminal's Ctrl-C
reaches it once, through here); the supervisor ends when the child does.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from types import FrameType

from engine import attempts
from store.base import Store
from store.errors import LeaseLostError, StoreError
from store.model import ExecutionRow, Status

#: A child that keeps dying without holding any lease is not restarted more than this
#: many times in a row: something is wrong with the worker itself (it said what).
MAX_IDLE_DEATHS = 3

_PR_SET_PDEATHSIG = 1


def _in_child(parent: int) -> None:
    """Before the child runs: its own process group, and killed with its parent (Linux)."""
    os.setpgid(0, 0)
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (AttributeError, OSError):  # not Linux: a child whose supervisor was SIGKILLed lives on
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


class Supervisor:
    """Runs ``argv`` (an unsupervised worker) as a child process and restarts it when it dies."""

    def __init__(
        self, store: Store, argv: list[str], *, max_attempts: int, say: Callable[[str], None]
    ) -> None:
        self.store = store
        self.argv = argv
        self.max_attempts = max_attempts
        self.say = say
        self._child: subprocess.Popen[bytes] | None = None
        self._signals = 0

    def run(self, done: Callable[[], bool] = lambda: False) -> int:
        """Run the child until it exits on its own, is stopped by a signal, or ``done()``
        after a death; returns its exit code."""
        previous = {s: signal.signal(s, self._forward) for s in (signal.SIGINT, signal.SIGTERM)}
        idle_deaths = 0
        try:
            while not self._signals:  # one that came between two children stops it too
                parent = os.getpid()
                self._child = subprocess.Popen(self.argv, preexec_fn=lambda: _in_child(parent))
                code = self._child.wait()
                if code == 0 or self._signals:
                    return code
                held = self._died(self._child.pid, code)
                if done():
                    return 0
                idle_deaths = 0 if held or code < 0 else idle_deaths + 1
                if idle_deaths >= MAX_IDLE_DEATHS or (not held and code > 0):
                    return code  # the worker failed on its own and said why: not a flow's doing
            return 130
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _forward(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        child = self._child
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGKILL if self._signals > 2 else signal.SIGINT)

    def _died(self, pid: int, code: int) -> bool:
        """Deal with the executions the dead child held; False if it held none."""
        prefix = f"{socket.gethostname()}:{pid}:"
        how = attempts.how_it_died(code)
        try:
            held = [r for r in self.store.list_executions(status=Status.RUNNING) if (r.lease_owner or "").startswith(prefix)]
            outcomes = [self._after_death(row, how) for row in held]
        except StoreError as exc:
            self.say(f"engine: the worker process {pid} died ({how}) and its executions cannot be handed back: {exc}; "
                     "they run again when their leases expire")
            return True
        if not held:
            self.say(f"engine: the worker process {pid} died ({how}) while running no execution; starting a new one")
            return False
        what = ", ".join(outcomes)
        executions = f"execution {what}" if len(held) == 1 else f"{len(held)} executions: {what}"
        self.say(f"engine: the worker process {pid} died ({how}) while running {executions}; starting a new one")
        return True

    def _after_death(self, row: ExecutionRow, how: str) -> str:
        assert row.lease_owner is not None
        note = attempts.note(row, row.lease_owner, f"died ({how})")
        attempt = f"attempt {row.attempts} of {self.max_attempts}"
        if row.attempts >= self.max_attempts:
            message = attempts.gave_up_message(row, self.max_attempts, note)
            try:
                self.store.commit(attempts.give_up(row, message, time.time()))
            except LeaseLostError:  # another worker took it over meanwhile
                return f"{row.id} (flow {row.flow!r}, {attempt}, taken over by another worker)"
            return f"{row.id} (flow {row.flow!r}, {attempt}: ended ENDED_ERROR, `engine show {row.id}` says why)"
        self.store.release_leases([(row.id, row.fence)], note=note)
        return f"{row.id} (flow {row.flow!r}, {attempt}: it runs again)"
