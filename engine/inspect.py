"""Replay diffs and what-if checks: would this code replay that recorded history?

``replay`` re-runs a handler against a recorded history with no live backend (no
child created, no setting written, no connection made) and returns a
``ReplayResult``: consistent, or the first divergence with both calls, both source
lines and the likely cause. The cause comes from a second, *lenient* run of the new
code (``engine.lenient``; the strict one is ``engine.probe``) that collects every call it makes, so the two call
sequences can be aligned. ``check_flow`` does this for every in-flight execution of
a flow, which is what ``engine check``, ``engine flows sync`` and ``engine dev`` report.
"""

from __future__ import annotations

import difflib
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec

from engine.api import Engine
from engine.divergence import CHANGED_ARGUMENTS, FIX_ARGUMENTS
from engine.divergence import describe as describe_call
from engine.errors import EngineError
from engine.flows import LoadedFlow, SyncedFlow, compile_flow
from engine.lenient import lenient_calls
from engine.probe import (
    END,
    Call,
    Key,
    ProbeContext,
    event_key,
    replayable,
    run_tracked,
)
from flow_api.exceptions import NondeterminismError
from store.events import (
    AttemptStarted,
    Event,
    ExecutionControlled,
    ExecutionEnded,
    ExecutionStarted,
)
from store.model import ENDED_STATUSES, STATUSES, source_version

IN_FLIGHT = tuple(s for s in STATUSES if s not in ENDED_STATUSES)


class Recorded(msgspec.Struct):
    """An execution's recorded history and the flow source it is pinned to;
    ``sources`` holds every flow version its log mentions (a resume may re-pin)."""

    id: str
    flow: str
    flow_version: str
    status: str
    events: list[Event]
    source: str | None = None
    path: str | None = None
    name: str | None = None
    project: str = "default"
    depth: int = 0
    root_id: str = ""
    sources: dict[str, str] = {}

    def source_line(self, event: Event) -> str:
        """The text of the line that recorded ``event``, in the version that ran then."""
        return self.source_lines().get(event.seq, "")

    def source_lines(self) -> dict[int, str]:
        """seq -> the text of the script line that recorded it (events with a line)."""
        out: dict[int, str] = {}
        version, lines = "", []
        for event in self.events:
            pinned = _pinned_by(event)
            if pinned is not None and pinned != version:
                version = pinned
                lines = (self.sources.get(version) or (self.source if version == self.flow_version else "") or "").splitlines()
            if 0 < event.line <= len(lines):
                out[event.seq] = lines[event.line - 1].strip()
        return out


def _pinned_by(event: Event) -> str | None:
    """The flow version an event pins the execution to from then on, if any."""
    body = event.body
    if isinstance(body, (ExecutionStarted, AttemptStarted)):
        return body.flow_version or None
    if isinstance(body, ExecutionControlled):
        return body.flow_version
    return None


class Code(msgspec.Struct, frozen=True):
    """Flow code to replay with: the pinned version, or a file being tried out."""

    label: str
    version: str
    source: str
    path: str | None = None

    def compile(self, name: str) -> LoadedFlow:
        """A fresh module for each replay, so no globals leak between runs."""
        return compile_flow(name, self.version, self.source, self.path)

    def line(self, number: int) -> str:
        lines = self.source.splitlines()
        return lines[number - 1].strip() if 0 < number <= len(lines) else ""


class CallSite(msgspec.Struct):
    """One call: what it was, and the line of the script that made it."""

    call: str
    command: str
    identity: str
    line: int
    source: str
    seq: int | None = None


class Divergence(msgspec.Struct):
    """Where the new code first asks for something the history did not record
    (``detail``: for changed arguments, which one and both values, shortened)."""

    seq: int
    cause: str
    explanation: str
    recorded: CallSite
    new: CallSite
    message: str
    detail: str = ""


class ReplayResult(msgspec.Struct):
    """The outcome of replaying one history. ``ended`` is the status the replay ended
    with, or None when it reached the end of the history (it would go on live there)."""

    execution_id: str
    flow: str
    status: str
    recorded_version: str
    code: str
    consistent: bool
    events: int
    replayed_to: int
    ended: str | None = None
    message: str | None = None
    divergence: Divergence | None = None


class FlowCheck(msgspec.Struct):
    """What-if for one flow: which in-flight executions the new code would break."""

    flow: str
    code: str
    version: str
    checked: int
    breaking: list[ReplayResult] = []
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.breaking


# -- loading --------------------------------------------------------------------------


def recorded(engine: Engine, execution_id: str) -> Recorded:
    """The history of an execution (id or unique prefix) with its pinned source."""
    row = engine.get(execution_id)
    events = engine.store.load_events(row.id)
    stored = {v: engine.store.get_flow_version(v) for v in {_pinned_by(e) for e in events} | {row.flow_version} if v}
    sources = {v: found.source for v, found in stored.items() if found is not None}
    pinned = stored.get(row.flow_version)
    return Recorded(
        row.id, row.flow, row.flow_version, row.status, events,
        pinned.source if pinned else None, pinned.path if pinned else None,
        row.name, row.project, row.depth, row.root_id, sources,
    )


def pinned_code(rec: Recorded) -> Code:
    """The code the execution is pinned to (EngineError when there is none to replay)."""
    if not rec.flow_version:
        raise EngineError(f"execution {rec.id} runs no flow script (a connection?): there is no handler to replay")
    if rec.source is None:
        raise EngineError(
            f"execution {rec.id}: its flow version {rec.flow_version[:12] or '(none)'} is not stored, "
            "so there is no code to replay; pass --flow-file"
        )
    return Code(f"pinned version {rec.flow_version[:8]}", rec.flow_version, rec.source, rec.path)


def file_code(path: str | Path) -> Code:
    """The code of a flow file on disk (not registered)."""
    file = Path(path)
    try:
        source = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EngineError(f"cannot read flow file {file}: {exc}") from None
    return Code(str(file), source_version(source), source, str(file.resolve()))


# -- replay ---------------------------------------------------------------------------


def replay(rec: Recorded, code: Code | None = None) -> ReplayResult:
    """Replay ``rec`` against ``code`` (default: its pinned version), touching nothing."""
    code = code or pinned_code(rec)
    events = replayable(rec.events)
    flow = code.compile(rec.flow)
    ctx = ProbeContext(rec, events, module_globals=flow.module_globals, flow_file=flow.filename)
    decision = run_tracked(ctx, flow)
    done = events[ctx.pos - 1].seq if ctx.pos <= len(events) else events[-1].seq
    result = ReplayResult(rec.id, rec.flow, rec.status, rec.flow_version, code.label, True, len(events), done)
    if decision.kind == "halt" and isinstance(ctx.fatal, NondeterminismError):
        result.consistent = False
        result.divergence = _divergence(rec, events, ctx, code)
    elif decision.kind == "end":
        result.ended, result.message = decision.status, decision.message
    return result


def _divergence(rec: Recorded, events: list[Event], ctx: ProbeContext, code: Code) -> Divergence:
    event = events[ctx.pos]
    recorded_site = _recorded_site(rec, event)
    if ctx.new_call is not None:
        command, identity, line = ctx.new_call
        new_site = CallSite(describe_call(command, identity), command, identity, line, code.line(line))
    else:
        line = ctx.end_line
        new_site = CallSite(f"the end of the handler ({ctx.end_status})", "end", "", line, code.line(line))
    fatal, detail = ctx.fatal, ""
    if isinstance(fatal, NondeterminismError) and fatal.cause == CHANGED_ARGUMENTS:
        cause, why, detail = fatal.cause, f"{fatal.detail}: {FIX_ARGUMENTS}", fatal.detail
    else:
        before = sum(1 for e in events[1:ctx.pos] if event_key(e) is not None)
        rec_calls = [(k, e) for e in events[ctx.pos:] if (k := event_key(e)) is not None]
        new_calls = lenient_calls(rec, events, code.compile(rec.flow))[before:]
        cause, why = _classify(rec_calls, new_calls, recorded_site, new_site)
    return Divergence(event.seq, cause, why, recorded_site, new_site, str(ctx.fatal), detail)


def _recorded_site(rec: Recorded, event: Event) -> CallSite:
    body = event.body
    if isinstance(body, ExecutionEnded):
        call, command, identity = f"the end of the handler ({body.status})", "end", ""
    else:
        command, identity = event.command, body.identity
        call = describe_call(command, identity)
    return CallSite(call, command, identity, event.line, rec.source_line(event), event.seq)


def _classify(
    rec: list[tuple[Key, Event]], new: list[Call], recorded_site: CallSite, new_site: CallSite,
) -> tuple[str, str]:
    """The likely cause of a divergence, from aligning both call sequences after it."""
    a, b = [k for k, _ in rec], [c.key for c in new]
    r, n = recorded_site.call, new_site.call
    if new_site.command == "end":
        left = len(rec) - (1 if rec and rec[-1][0] == END else 0)
        return "removed", (f"the handler now ends at line {new_site.line}, but the history has {left} more "
                           f"recorded call(s), starting with {r}: a call was removed")
    ops = [op for op in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes() if op[0] != "equal"]
    if not ops:
        return "changed", f"the code now calls {n} where the history recorded {r}"
    tag, i1, i2, j1, j2 = ops[0]
    later_removed = Counter(x for op in ops[1:] if op[0] in ("delete", "replace") for x in a[op[1]:op[2]])
    later_added = Counter(x for op in ops[1:] if op[0] in ("insert", "replace") for x in b[op[3]:op[4]])
    seq_of = {k: e.seq for k, e in reversed(rec[1:])}
    line_of = {c.key: c.line for c in reversed(new[1:])}
    reordered = f"{n} was recorded later (seq {seq_of.get(b[j1], '?')}) and now comes before {r}: the calls were reordered"
    if tag == "insert":
        if any(x in later_removed for x in b[j1:j2]):
            return "reordered", reordered
        return "added", _added(n, r, line_of.get(a[i1]))
    if tag == "delete":
        if any(x in later_added for x in a[i1:i2]):
            return "reordered", reordered
        return "removed", _removed(n, r, seq_of.get(b[j1]) if j1 < len(b) else None)
    if b[j1] in a[i1 + 1:i2] or b[j1] in later_removed:
        if a[i1] in b[j1 + 1:j2] or a[i1] in later_added:
            return "reordered", reordered
        return "removed", _removed(n, r, seq_of.get(b[j1]))
    if a[i1] in b[j1 + 1:j2] or a[i1] in later_added:
        return "added", _added(n, r, line_of.get(a[i1]))
    if a[i1][0] == b[j1][0] and a[i1] != END:
        return "renamed", (f"same command ({a[i1][0]}), different identity: {a[i1][1]!r} became {b[j1][1]!r}; "
                           "a step function, flow, setting or connector was renamed")
    return "changed", f"the code now calls {n} where the history recorded {r}"


def _added(n: str, r: str, line: int | None) -> str:
    then = ""
    if line:
        then = f" (the new code still {'ends' if r.startswith('the end') else 'calls ' + r} later, at line {line})"
    return f"the history has no {n} here: a call was added before {r}{then}"


def _removed(n: str, r: str, seq: int | None) -> str:
    where = f", which the history recorded at seq {seq}" if seq else ""
    return f"the new code no longer calls {r}; it goes on with {n}{where}: a call was removed"


def describe(result: ReplayResult) -> list[str]:
    """A plain-text rendering (for assertion messages and the CLI)."""
    who = f"execution {result.execution_id} (flow {result.flow}, {result.status})"
    if result.divergence is None:
        if result.ended is not None:
            how = f"the handler ended {result.ended}" + (f": {result.message}" if result.message else "")
        else:
            how = f"it reached the end of the history and would go on live after seq {result.replayed_to}"
        return [f"consistent: {who} replays against {result.code}; {result.events} events, {how}"]
    d = result.divergence
    width = max(len(d.recorded.call), len(d.new.call))
    return [
        f"diverges at seq {d.seq}: {who} against {result.code}",
        f"  recorded  {d.recorded.call:<{width}}  line {d.recorded.line or '?'}: {d.recorded.source}",
        f"  new code  {d.new.call:<{width}}  line {d.new.line or '?'}: {d.new.source}",
        f"  cause     {d.cause}: {d.explanation}",
    ]


# -- what-if ------------------------------------------------------------------------------


def in_flight(engine: Engine, flow: str) -> list[Any]:
    """Executions of ``flow`` that have not ended, oldest first."""
    rows = [r for s in IN_FLIGHT for r in engine.store.list_executions(status=s, flow=flow)]
    return sorted((r for r in rows if r.flow_version and r.type != "CONNECTION"), key=lambda r: r.created_at)


def check_flow(engine: Engine, flow: str, code: Code, *, skip_version: str | None = None) -> FlowCheck:
    """Replay every in-flight execution of ``flow`` against ``code``."""
    check = FlowCheck(flow, code.label, code.version, 0)
    try:
        code.compile(flow)
    except EngineError as exc:
        check.error = str(exc)
        return check
    for row in in_flight(engine, flow):
        if row.flow_version in (skip_version, code.version):
            continue
        check.checked += 1
        result = replay(recorded(engine, row.id), code)
        if not result.consistent:
            check.breaking.append(result)
    return check


def check_files(engine: Engine, paths: list[str]) -> list[FlowCheck]:
    """``engine check``: each file's flow (its stem) against its in-flight executions."""
    return [check_flow(engine, Path(p).stem, file_code(p)) for p in paths]


def check_synced(engine: Engine, synced: list[SyncedFlow]) -> list[FlowCheck]:
    """After a sync: the in-flight executions of each changed flow that could not be
    moved to its new version (they keep running on the version they started with)."""
    checks = []
    for s in synced:
        if not s.changed:
            continue
        stored = engine.store.get_flow_version(s.version)
        if stored is None:
            continue
        code = Code(f"{s.path} ({s.version[:8]})", s.version, stored.source, stored.path)
        checks.append(check_flow(engine, s.name, code))
    return checks


def replay_execution(engine: Engine, execution_id: str, flow_file: str | None = None) -> ReplayResult:
    """``engine replay ID [--flow-file PATH]``: its pinned version, or the file's code."""
    return replay(recorded(engine, execution_id), file_code(flow_file) if flow_file else None)
