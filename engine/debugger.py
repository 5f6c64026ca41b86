"""``engine debug``: step through a recorded execution under pdb.

The handler is replayed with no live backend: every command is answered from the
log, so the user sees the real recorded values and nothing touches the outside
world (no step function runs, no child is created, no setting is written). Ended
executions can be debugged as well as running ones.

Stopping "at seq N" takes two runs of the same replay. A quiet first run counts the
line events of the flow's code up to the moment command N is issued; the second run,
under pdb, stops at that same line event, just before the command runs. A replay is
deterministic (that is what the log is for), so both runs see the same lines.
"""

from __future__ import annotations

import bdb
import linecache
import pdb  # noqa: T100  (the debugger is the feature)
import sys
from collections.abc import Callable
from types import FrameType
from typing import IO, Any

import msgspec

from engine.errors import EngineError
from engine.inspect import Code, Recorded
from engine.probe import ProbeContext, event_key, replayable, run_tracked
from store.events import Event, ExecutionEnded

#: Modules pdb does not step into: the engine answers commands, the user's code is the flow.
SKIP = ["engine.*", "flow_api.*", "store.*", "msgspec.*", "bdb", "pdb"]

Tracer = Callable[[FrameType, str, Any], Any]


class DebugPlan(msgspec.Struct):
    """Where the debugger will stop. ``line_event`` counts the flow code's line events
    (1 = the handler's first line); ``seq`` is None when stopping at the first line."""

    execution_id: str
    flow: str
    status: str
    code: str
    seq: int | None
    call: str
    line: int
    source: str
    line_event: int
    note: str | None = None


class DebugOutcome(msgspec.Struct):
    """How the debugged replay ended: ``ended``, ``exhausted`` (reached the end of the
    recorded history at ``seq``), ``diverged`` or ``quit``."""

    kind: str
    status: str | None = None
    message: str | None = None
    seq: int | None = None


class _LineCounter:
    """Counts line events in the flow's frames; remembers each frame's current count."""

    def __init__(self, module_globals: dict[str, Any]) -> None:
        self.globals = module_globals
        self.count = 0
        self.current: dict[FrameType, int] = {}

    def trace(self, frame: FrameType, event: str, arg: Any) -> Tracer | None:
        return self._local if frame.f_globals is self.globals else None

    def _local(self, frame: FrameType, event: str, arg: Any) -> Tracer:
        if event == "line":
            self.count += 1
            self.current[frame] = self.count
        return self._local

    def caller_count(self) -> tuple[int, int]:
        """(line event, line number) of the innermost flow frame on the stack."""
        frame: FrameType | None = sys._getframe(1)
        while frame is not None and frame.f_globals is not self.globals:
            frame = frame.f_back
        if frame is None:
            return self.count, 0
        return self.current.get(frame, self.count), frame.f_lineno


def plan(rec: Recorded, code: Code, at: int | None = None) -> DebugPlan:
    """Find the line event at which to stop for command ``at`` (or the first line)."""
    events = replayable(rec.events)
    base: dict[str, Any] = {"execution_id": rec.id, "flow": rec.flow, "status": rec.status, "code": code.label}
    if at is None or at <= 1:
        return DebugPlan(**base, seq=None, call="the first line of the handler", line=0, source="", line_event=1)
    target = next((e for e in events if e.seq >= at and event_key(e) is not None), None)
    if target is None:
        last = rec.events[-1].seq
        if at > last:
            raise EngineError(f"execution {rec.id} has no seq {at}: its history ends at seq {last}; `engine history {rec.id}` lists it")
        raise EngineError(f"execution {rec.id}: seq {at} comes after the execution was cancelled or its last command; "
                          f"the replay cannot reach it (try --at {events[-1].seq})")
    note = None
    if target.seq != at:
        kind = next(e.kind for e in rec.events if e.seq == at)
        note = f"seq {at} ({kind}) is not a command; stopping at the next one, seq {target.seq}"
    flow = code.compile(rec.flow)
    counter = _LineCounter(flow.module_globals)
    hit: list[tuple[int, int]] = []

    def hook(ctx: ProbeContext, event: Event) -> None:
        if event.seq == target.seq and not hit:
            hit.append(counter.caller_count())

    ctx = ProbeContext(rec, events, module_globals=flow.module_globals, flow_file=flow.filename, hook=hook)
    decision = _traced(counter.trace, lambda: run_tracked(ctx, flow))
    if isinstance(target.body, ExecutionEnded) and decision.kind == "end":
        hit.append((counter.count, ctx.end_line))
    if not hit:
        why = f": {ctx.fatal}" if ctx.fatal is not None else ""
        raise EngineError(f"execution {rec.id}: the replay against {code.label} never reaches seq {target.seq}{why}")
    count, line = hit[0]
    if isinstance(target.body, ExecutionEnded):
        call = f"the end of the handler ({target.body.status})"
    else:
        identity = target.body.identity
        call = f"{target.command}({identity!r})" if identity else f"{target.command}()"
    return DebugPlan(**base, seq=target.seq, call=call, line=line, source=code.line(line), line_event=count, note=note)


def _traced(tracer: Tracer, fn: Callable[[], Any]) -> Any:
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        return fn()
    finally:
        sys.settrace(previous)


class ReplayPdb(pdb.Pdb):
    """pdb that runs untraced-fast until the ``target``-th line event of the flow's code."""

    def __init__(self, module_globals: dict[str, Any], target: int, stdin: IO[str] | None = None,
                 stdout: IO[str] | None = None) -> None:
        super().__init__(stdin=stdin, stdout=stdout, skip=SKIP, nosigint=True, readrc=False)
        self._flow_globals = module_globals
        self._target = target
        self._lines = 0
        self.quit_requested = False

    def break_anywhere(self, frame: FrameType) -> bool:
        return frame.f_globals is self._flow_globals or super().break_anywhere(frame)

    def dispatch_line(self, frame: FrameType) -> Any:
        if frame.f_globals is self._flow_globals:
            self._lines += 1
            if self._lines == self._target:
                self.set_step()
        return super().dispatch_line(frame)

    def set_quit(self) -> None:
        self.quit_requested = True
        super().set_quit()

    def run_replay(self, fn: Callable[[], Any]) -> Any:
        """Call ``fn`` traced; stop at the target line; returns what ``fn`` returned."""
        self.reset()
        self._set_stopinfo(sys._getframe(), None, -1)  # type: ignore[attr-defined]  # run on, tracing
        try:
            return _traced(self.trace_dispatch, fn)
        except bdb.BdbQuit:
            self.quit_requested = True
            return None


def run(rec: Recorded, code: Code, where: DebugPlan, stdin: IO[str] | None = None,
        stdout: IO[str] | None = None) -> DebugOutcome:
    """Replay under pdb, stopping as ``where`` says; pdb reads ``stdin``, writes ``stdout``."""
    events = replayable(rec.events)
    flow = code.compile(rec.flow)
    ctx = ProbeContext(rec, events, module_globals=flow.module_globals, flow_file=flow.filename)
    debugger = ReplayPdb(flow.module_globals, where.line_event, stdin, stdout)
    shown = debugger.canonic(flow.filename)  # pdb looks lines up under the absolute name
    if shown != flow.filename and flow.filename in linecache.cache:
        linecache.cache[shown] = linecache.cache[flow.filename]
    decision = debugger.run_replay(lambda: run_tracked(ctx, flow))
    if debugger.quit_requested or decision is None:
        return DebugOutcome("quit")
    if decision.kind == "halt":
        return DebugOutcome("diverged", message=decision.message)
    if decision.kind == "end":
        return DebugOutcome("ended", decision.status, decision.message)
    seq = events[-1].seq
    return DebugOutcome("exhausted", rec.status, seq=seq)
