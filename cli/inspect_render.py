"""Rendering for the inspect commands: history rows, replay diffs and what-if reports."""

from __future__ import annotations

from typing import Any

import click

from cli.render import format_time
from engine.inspect import FlowCheck, ReplayResult, describe
from store.events import Event, body_to_builtins

_KIND_STYLES: dict[str, dict[str, Any]] = {
    "failed": {"fg": "red"}, "ended": {"bold": True}, "started": {"bold": True},
    "cancelled": {"fg": "yellow"}, "control": {"fg": "magenta"},
}
_OUTCOMES = {"timer_fired": "· timer fired", "wait_done": "· wait done", "message_answered": "· message answered"}


def short(value: Any, width: int = 60) -> str:
    """A one-line Python rendering of a value, cut to ``width``."""
    return _cut(repr(value).replace("\n", "↵"), width)


def _kwargs(values: Any) -> str:
    if not isinstance(values, dict):
        return short(values)
    return ", ".join(f"{k}={short(v, 30)}" for k, v in values.items())


def clock_time(ts: float) -> str:
    return format_time(ts, clock=True)


def event_summary(event: Event) -> tuple[str, str]:
    """(the call and its key arguments, its result in short) for one event."""
    b: Any = event.body
    kind = event.kind
    if kind == "started":
        return f"start {b.flow}({_kwargs(b.input_value or {})})", f"version {b.flow_version[:8]}"
    if kind == "ended":
        return "end", b.status + (f": {b.message}" if b.message else "")
    if kind == "log":
        return f"log({short(b.message, 70)})", "" if b.level == "info" else b.level
    if kind == "output":
        return f"{'save' if b.replace else 'set_output'}({_kwargs(b.values)})", ""
    if kind == "now":
        return "now()", format_time(b.value)
    if kind in ("random", "uuid"):
        return f"{kind}()", short(b.value)
    if kind == "step":
        return f"step({b.name})", short(b.result)
    if kind == "failed":
        return f"{b.failed_command}({b.failed_identity})", f"raised {b.error.type}: {short(b.error.message, 70)}"
    if kind == "sleep":
        return f"sleep({b.seconds:g})", f"until {clock_time(b.due_at)}"
    if kind == "child":
        call = "connect" if b.child_type == "CONNECTION" else "flow"
        return f"{call}({b.flow!r}{', run=False' if not b.run else ''})", f"child {b.child_id}"
    if kind == "wait":
        timeout = "" if b.deadline is None else f", until {clock_time(b.deadline)}"
        return f"wait_for({', '.join(b.targets)}, {b.return_when}{timeout})", ""
    if kind == "wait_done":
        states = ", ".join(f"{i[:8]} {s}" for i, s in b.statuses.items())
        return _OUTCOMES[kind], ("timed out; " if b.timed_out else "") + states
    if kind == "message":
        return f"message({b.subject!r}{', wait' if b.wait else ''})", f"message {b.message_id}"
    if kind == "message_answered":
        return _OUTCOMES[kind], "timed out" if b.timed_out else short(b.response)
    if kind == "timer_fired":
        return _OUTCOMES[kind], ""
    if kind == "attempt":
        outcome = "ok" if b.ok else f"failed: {short(b.error.message if b.error else '', 60)}"
        retry = "" if b.retry_at is None else f"; retry at {clock_time(b.retry_at)} (after {b.delay:.2f}s)"
        return f"attempt {b.attempt}", f"{outcome} in {b.seconds:.2f}s{retry}"
    if kind == "setting_read":
        return f"setting({b.setting!r}).read", short(b.value) if b.exists else "does not exist"
    if kind == "setting_save":
        return f"setting({b.setting!r}).save({short(b.value, 40)})", ""
    data = body_to_builtins(event.body)
    data.pop("kind", None)
    command = event.command
    call = f"{command}({event.body.identity!r})" if command and event.body.identity else (f"{command}()" if command else kind)
    return call, short(data, 70)


def history_rows(events: list[Event], lines: dict[int, str]) -> list[list[Any]]:
    """Rows of ``engine history``: seq, time, kind, call, result, line (number: source)."""
    rows = []
    for e in events:
        call, result = event_summary(e)
        where = f"{e.line}: {lines.get(e.seq, '')}".rstrip(": ") if e.line else ""
        rows.append([e.seq, format_time(e.at), e.kind, call, result, where])
    return rows


def stream_line(row: list[Any]) -> str:
    """One history row in fixed columns, for ``--follow``."""
    seq, at, kind, call, result, where = (str(c) for c in row)
    kind_text = click.style(f"{kind:<13}", **_KIND_STYLES.get(kind, {}))
    return f"{seq:>4}  {at}  {kind_text} {_cut(call, 44):<44}  {_cut(result, 40):<40}  {where}".rstrip()


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def replay_lines(result: ReplayResult) -> list[str]:
    """``engine replay``: the verdict first (coloured on a terminal), then the details."""
    lines = describe(result)
    head, rest = lines[0], lines[1:]
    verdict, _, tail = head.partition(":")
    colour = "green" if result.consistent else "red"
    return [click.style(verdict, fg=colour, bold=True) + ":" + tail, *rest]


def check_lines(check: FlowCheck, *, after_sync: bool = False) -> list[str]:
    """The what-if report of one flow (``engine check``; ``engine flows sync`` warnings)."""
    if check.error:
        return [click.style(f"{check.flow} ({check.code}): cannot be checked: {check.error}", fg="red")]
    n = check.checked
    if after_sync:
        if not check.breaking:
            return []
        head = (f"warning: flow {check.flow} changed: {len(check.breaking)} of {n} in-flight execution(s) could not be "
                f"moved to the new version {check.version[:8]}; they keep running on the version they started with:")
    elif not n:
        return [f"{check.flow} ({check.code}): no in-flight executions on other versions"]
    elif not check.breaking:
        return [click.style(f"{check.flow} ({check.code}): all {n} in-flight execution(s) would replay", fg="green")]
    else:
        head = click.style(f"{check.flow} ({check.code}): {len(check.breaking)} of {n} in-flight execution(s) would break:", fg="red")
    lines = [head]
    for r in check.breaking:
        d = r.divergence
        assert d is not None
        change = f"{d.recorded.call}: {d.detail}" if d.detail else f"{d.recorded.call} -> {d.new.call}"
        lines.append(f"  {r.execution_id} {r.status:<8} seq {d.seq}: {d.cause}: {change}")
        lines.append(f"      recorded  line {d.recorded.line or '?'}: {d.recorded.source}")
        lines.append(f"      new code  line {d.new.line or '?'}: {d.new.source}")
    return lines
