"""``engine dev DIR``: the edit loop.

Watches a flows folder; every save registers the changed flows as new versions, a
worker (in a thread) runs whatever is queued, and the caller gets, for each changed
flow, the what-if report: which in-flight executions could not be moved to the new
version (they keep running on the version they started with), and the calls in its
source that differ between runs (with ``strict``, a save that has any is not registered).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from engine.api import Engine
from engine.determinism import (
    Finding,
    NondeterministicFlowError,
    scan_directory,
    scan_files,
)
from engine.errors import EngineError
from engine.flows import SyncedFlow
from engine.inspect import FlowCheck, check_synced

log = logging.getLogger(__name__)


class DevReport(msgspec.Struct):
    """One round of the loop: what was synced (changed flows only after the first),
    the what-if check of each changed flow and the determinism findings in its source."""

    synced: list[SyncedFlow]
    checks: list[FlowCheck] = []
    findings: list[Finding] = []
    first: bool = False
    error: str | None = None


def dev_loop(
    engine: Engine,
    directory: str | Path,
    on_report: Callable[[DevReport], None],
    *,
    stop: threading.Event | None = None,
    max_rounds: int | None = None,
    worker_options: dict[str, Any] | None = None,
    strict: bool = False,
) -> None:
    """Sync, run a worker, and report after each save until ``stop`` is set, Ctrl-C,
    or ``max_rounds`` saves that changed a flow. With ``strict`` a folder whose flows
    have calls that differ between runs is not synced: at the start that raises
    ``NondeterministicFlowError``, after a save it is reported and the loop goes on."""
    try:
        import watchfiles
    except ImportError:
        raise EngineError("`engine dev` needs watchfiles: pip install 'durable-engine[dev]'") from None
    root = Path(directory)
    synced = _sync(engine, root, strict)
    on_report(DevReport(synced, check_synced(engine, synced), scan_files(s.path for s in synced), first=True))
    stop = stop or threading.Event()
    worker = engine.worker(**(worker_options or {}))
    thread = threading.Thread(target=worker.run, name="engine-dev-worker", daemon=True)
    thread.start()
    rounds = 0
    try:
        for _changes in watchfiles.watch(root, stop_event=stop, watch_filter=watchfiles.PythonFilter(),
                                         debounce=200, step=20, rust_timeout=500, yield_on_timeout=False):
            try:
                changed = [s for s in _sync(engine, root, strict) if s.changed]
            except NondeterministicFlowError as exc:
                on_report(DevReport([], findings=exc.findings, error=str(exc)))
                continue
            except EngineError as exc:
                on_report(DevReport([], error=str(exc)))
                continue
            if not changed:
                continue
            on_report(DevReport(changed, check_synced(engine, changed), scan_files(s.path for s in changed)))
            rounds += 1
            if max_rounds is not None and rounds >= max_rounds:
                break
    finally:
        worker.stop()
        thread.join(timeout=30)


def _sync(engine: Engine, root: Path, strict: bool) -> list[SyncedFlow]:
    if strict:
        findings = scan_directory(root)
        if findings:
            raise NondeterministicFlowError(findings, "the folder was not synced")
    return engine.sync_flows(root)
