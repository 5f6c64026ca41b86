"""Fault injection for crash tests: kill this process at a named point.

``ENGINE_FAULT=point:N`` (several separated by commas) sends SIGKILL to the process
the N-th time it passes ``point``. Points:

- ``step.ran``: a step's function returned, its result is not recorded yet.
- ``child.created``: a child's creation is built, not committed yet.
- ``commit.before``: inside a write transaction, before COMMIT.
- ``commit.after``: just after a COMMIT.
- ``connection.sent``: a connector call returned, its result is not recorded yet.

Unset (the default), every check is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import threading

_counts: dict[str, int] = {}
_lock = threading.Lock()


def _parse(spec: str) -> dict[str, int]:
    points = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, count = part.partition(":")
        points[name] = int(count or 1)
    return points


_armed = _parse(os.environ.get("ENGINE_FAULT", ""))


def fault_point(name: str) -> None:
    """Kill the process here if ``ENGINE_FAULT`` says so."""
    if name not in _armed:
        return
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        hit = _counts[name] == _armed[name]
    if hit:
        os.kill(os.getpid(), signal.SIGKILL)
