"""What an execution looks like to readers: the JSON fields shared by the CLI's
``--json`` output and the HTTP API, so both show the same thing."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import msgspec

from engine.clock import system_clock
from engine.details import Details
from store.model import ExecutionRow

#: Fields of an execution row that are the worker's business, not a reader's.
INTERNAL_FIELDS = ("lease_owner", "lease_expires", "fence", "last_seq", "wake_at", "attempt_log")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def execution_dict(row: ExecutionRow) -> dict[str, Any]:
    """The execution fields shown by ``show --json`` / ``ls --json`` / ``run --json`` and the API."""
    data: dict[str, Any] = msgspec.to_builtins(row)
    for internal in INTERNAL_FIELDS:
        data.pop(internal)
    data["duration"] = None if row.ended_at is None else round(row.ended_at - row.created_at, 6)
    return data


def details_dict(d: Details) -> dict[str, Any]:
    """Everything ``engine show --json`` prints: the fields, version, timings, children,
    dependencies and fork origin."""
    children = [{"id": c.id, "flow": c.flow, "status": c.status, "created_at": c.created_at} for c in d.children]
    deps = {"waits_for": msgspec.to_builtins(d.waits_for), "waited_by": msgspec.to_builtins(d.waited_by)}
    return {**execution_dict(d.execution), "version": msgspec.to_builtins(d.version),
            "timings": msgspec.to_builtins(d.timings), "children": children, "dependencies": deps,
            "fork": msgspec.to_builtins(d.fork)}


def parse_since(text: str) -> float:
    """``10m``, ``2h``, ``1d``, ``1w`` ago, or an ISO date/time (local time unless it
    says), as a timestamp; ``ValueError`` with a one-line reason otherwise."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text.lower())
    if found:
        return system_clock() - float(found[1]) * _UNITS[found[2]]
    try:
        return dt.datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration (10m, 2h, 1d) nor an ISO date (2024-05-01, 2024-05-01T12:00)"
        ) from None
