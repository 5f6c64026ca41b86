"""Rendering for the CLI: JSON for machines, aligned tables for people."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Sequence
from typing import Any

import click
import msgspec

from store.events import Event, body_to_builtins
from store.model import ExecutionRow

_STATUS_COLOURS = {"ENDED_SUCCESS": "green", "ENDED_ERROR": "red", "ENDED_CANCELLED": "yellow",
                   "HALTED": "magenta", "WAITING": "cyan", "RUNNING": "blue"}


def echo_json(data: Any) -> None:
    click.echo(json.dumps(msgspec.to_builtins(data), indent=2, default=repr))


def execution_dict(row: ExecutionRow) -> dict[str, Any]:
    """The execution fields shown by ``show --json`` / ``ls --json`` / ``run --json``."""
    data = msgspec.to_builtins(row)
    for internal in ("lease_owner", "lease_expires", "fence", "last_seq", "wake_at"):
        data.pop(internal)
    data["duration"] = None if row.ended_at is None else round(row.ended_at - row.created_at, 6)
    return data


def event_dict(event: Event) -> dict[str, Any]:
    return {"seq": event.seq, "kind": event.kind, "at": event.at, "line": event.line, "data": body_to_builtins(event.body)}


def format_time(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts).isoformat(sep=" ", timespec="milliseconds")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """An aligned table; cells are cut to fit the terminal width, colours only on a tty."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    room = shutil.get_terminal_size((160, 24)).columns - 2 * (len(headers) - 1)
    while sum(widths) > room and max(widths) > 12:
        widest = widths.index(max(widths))
        widths[widest] -= 1
    click.echo("  ".join(click.style(h.ljust(w), bold=True) for h, w in zip(headers, widths)).rstrip())
    for row in cells:
        out = []
        for cell, width in zip(row, widths):
            text = cell if len(cell) <= width else cell[: max(width - 1, 0)] + "…"
            colour = _STATUS_COLOURS.get(cell)
            out.append(click.style(text.ljust(width), fg=colour) if colour else text.ljust(width))
        click.echo("  ".join(out).rstrip())
