"""Rendering for the CLI: JSON for machines, aligned tables for people."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from collections.abc import Sequence
from typing import Any

import click
import msgspec

from store.events import Event, body_to_builtins
from store.model import Status

#: Piped output cuts a cell only beyond this many characters.
MAX_CELL = 240

_STATUS_COLOURS: dict[str, str] = {Status.ENDED_SUCCESS: "green", Status.ENDED_ERROR: "red", Status.ENDED_CANCELLED: "yellow",
                   Status.HALTED: "magenta", Status.WAITING: "cyan", Status.RUNNING: "blue"}


def echo_json(data: Any) -> None:
    click.echo(json.dumps(msgspec.to_builtins(data), indent=2, default=repr))


def event_dict(event: Event) -> dict[str, Any]:
    return {"seq": event.seq, "kind": event.kind, "at": event.at, "line": event.line, "data": body_to_builtins(event.body)}


def format_time(ts: float | None, *, clock: bool = False) -> str:
    """A local date and time to the millisecond (with ``clock``, the time only); a time
    no calendar can show (a timer recorded with an absurd due time by an older engine)
    is shown as its number."""
    if ts is None:
        return "-"
    try:
        text = dt.datetime.fromtimestamp(ts).isoformat(sep=" ", timespec="milliseconds")
    except (ValueError, OverflowError, OSError):
        return f"{ts!r} (not a date)"
    return text.partition(" ")[2] if clock else text


def is_terminal() -> bool:
    """Whether stdout is a terminal (colours, cut cells, a pager) rather than a pipe."""
    return sys.stdout.isatty()


def _cell(value: Any) -> str:
    text = str(value).replace("\r", "").replace("\n", " ↵ ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def table_lines(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Aligned lines; on a terminal the widest cells are cut so lines fit its width."""
    cells = [[_cell(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    if is_terminal():
        room = shutil.get_terminal_size((160, 24)).columns - 2 * (len(headers) - 1)
        while sum(widths) > room and max(widths) > 12:
            widths[widths.index(max(widths))] -= 1
    lines = [click.style("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(), bold=True)]
    for row in cells:
        out = []
        for cell, width in zip(row, widths):
            text = cell if len(cell) <= width else cell[: max(width - 1, 0)] + "…"
            colour = _STATUS_COLOURS.get(cell)
            out.append(click.style(text.ljust(width), fg=colour) if colour else text.ljust(width))
        lines.append("  ".join(out).rstrip())
    return lines


def echo_lines(lines: Sequence[str], *, page: bool = False) -> None:
    """Print lines; with ``page``, through a pager when they overflow the terminal."""
    if page and is_terminal() and len(lines) > shutil.get_terminal_size((160, 24)).lines - 1:
        click.echo_via_pager("\n".join(lines) + "\n")
        return
    for line in lines:
        click.echo(line)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, page: bool = False) -> None:
    """An aligned table. On a terminal cells are cut to fit its width and, with ``page``,
    a long table goes through a pager; piped output keeps cells whole (up to ``MAX_CELL``)."""
    echo_lines(table_lines(headers, rows), page=page)
