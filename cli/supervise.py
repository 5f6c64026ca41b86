"""How ``engine worker`` and ``engine run`` run handlers: in a supervised child
process (the default), or in this process (``--no-supervise``), where Ctrl-C stops the
worker: the first hands its executions back and returns, the second exits at once."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import TypeVar

import click

from engine.api import Engine
from engine.supervisor import Supervisor
from engine.worker import Worker

T = TypeVar("T")

#: How a child process starts the ``engine`` command (``-P``: not from the current folder).
CHILD_PREFIX = [sys.executable, "-P", "-m", "cli"]

supervise_option = click.option(
    "--supervise/--no-supervise", default=True, envvar="ENGINE_SUPERVISE", show_default=True,
    help="Run handlers in a child process, restarted if flow code kills it [env ENGINE_SUPERVISE=0 turns it off].",
)


def child_argv(ctx: click.Context, engine: Engine, worker_args: list[str]) -> list[str]:
    """The command line of an unsupervised ``engine worker`` on this invocation's database."""
    root = ctx.find_root().params
    argv = [*CHILD_PREFIX, "--db", engine.store.path, "--synchronous", engine.synchronous]
    if root.get("verbose"):
        argv.append("-v")
    return [*argv, "worker", "--no-supervise", *worker_args]


def supervise(engine: Engine, argv: list[str], max_attempts: int, done: Callable[[], bool] = lambda: False) -> int:
    """Run ``argv`` under a ``Supervisor`` that reports on stderr; returns its exit code."""
    supervisor = Supervisor(engine.store, argv, max_attempts=max_attempts, say=lambda line: click.echo(line, err=True))
    return supervisor.run(done)


def run_in_process(worker: Worker, work: Callable[[], T]) -> tuple[T, bool]:
    """Run ``work`` (which runs ``worker``) with Ctrl-C/SIGTERM handled; returns its
    result and whether a signal stopped it. Exits at once on the second signal."""
    stopped = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopped
        if stopped:
            _exit_now(130, "engine: stopped at once; executions still leased run again when their leases expire")
        stopped = True
        click.echo("engine: stopping: handing back the executions this worker runs (Ctrl-C again to exit at once)", err=True)
        worker.stop(abandon=True)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = work()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return result, stopped


def leave(worker: Worker, code: int) -> None:
    """Exit with ``code``; at once if a handler is still stuck in code that cannot be
    interrupted (its execution was handed back), since Python would wait for it."""
    if worker.busy():
        _exit_now(code, None)
    sys.exit(code)


def _exit_now(code: int, message: str | None) -> None:
    if message:
        click.echo(message, err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
