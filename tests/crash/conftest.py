"""Fixtures of the crash-anywhere tests: the counting HTTP server and the run figures.

The figures (programs, kills, executions, re-run steps, repeated requests) are printed
at the end of the pytest run and, when ``CRASH_STATS=path`` is set, written there as
JSON, which is how ``SOAK.md`` got its numbers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import pytest
from crash_harness import Figures
from crash_server import CountingServer

FIGURES = Figures()


@pytest.fixture(scope="session")
def crash_server() -> Iterator[CountingServer]:
    """An HTTP server on 127.0.0.1 counting requests per Idempotency-Key."""
    server = CountingServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def crash_figures() -> Figures:
    return FIGURES


@pytest.fixture(scope="session", autouse=True)
def _no_fault_in_this_process() -> None:
    # store.faults reads ENGINE_FAULT at import: armed here, the reference run would die
    if os.environ.get("ENGINE_FAULT"):
        pytest.exit("unset ENGINE_FAULT: the crash tests arm it per worker process themselves")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES.programs:
        return
    f = FIGURES
    terminalreporter.write_sep("-", "crash-anywhere figures")
    terminalreporter.write_line(
        f"{f.programs} programs ({f.flows_in_programs} flows), {f.executions} executions "
        f"({f.connections} connections) in crashed runs; {f.harness_kills} SIGKILLs by the harness "
        f"(holding {f.leases_held_at_kill} leases) + {f.fault_kills} at ENGINE_FAULT points + "
        f"{f.freezes} workers frozen past their lease, "
        f"{f.workers_started} worker processes started, "
        f"{f.crashed_seconds:.0f} s of crashed runs"
    )
    terminalreporter.write_line(
        f"step bodies run {f.step_bodies_run} ({f.step_reruns} re-runs after kills); requests "
        f"{f.requests} ({f.repeated_requests} repeated); programs lost or diverged: {f.lost}"
    )
    points = ", ".join(f"{p} {n}" for p, n in sorted(f.fault_kills_by_point.items()))
    terminalreporter.write_line(f"kills at ENGINE_FAULT points: {points or 'none'}")
    path = os.environ.get("CRASH_STATS")
    if path:
        with open(path, "w") as fh:
            json.dump(asdict(FIGURES), fh, indent=2)
