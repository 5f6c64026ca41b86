"""Replay contexts for inspecting histories; none of them touches the outside world.

``ProbeContext`` is a strict pure replay (``live=None``) that also remembers how it
diverged (the new call and its line, or where the handler ended) and can call a hook
before each recorded command is answered (the debugger stops there).

``LenientContext`` lets changed code run on past a divergence so its calls can be
aligned with the recorded ones: each call is answered from the first unused recorded
event with the same command and identity, anywhere in the history; a call the history
cannot answer gets a placeholder (a step returns None, a wait returns at once) from a
sandbox that writes nothing. A call that needs more than the sandbox offers stops it.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable
from types import FrameType
from typing import Any

import msgspec

from engine.activation import run_handler
from engine.decision import Decision
from engine.errors import rebuild_error
from engine.flows import LoadedFlow
from engine.replay import ReplayContext
from flow_api.exceptions import LifecycleSignal
from flow_api.resources import revive
from store.events import (
    Arg,
    Body,
    CommandFailed,
    Event,
    ExecutionCancelled,
    ExecutionEnded,
    WaitStarted,
    replay_history,
)

Key = tuple[str, str]
END: Key = ("end", "")

#: A lenient run stops after this many calls (a loop polling a placeholder never ends).
MAX_CALLS = 10_000


class Call(msgspec.Struct, frozen=True):
    """A call the new code made: command, identity and the script line."""

    command: str
    identity: str
    line: int

    @property
    def key(self) -> Key:
        return (self.command, self.identity)


def event_key(event: Event) -> Key | None:
    """(command, identity) of a recorded call, END for the recorded end, else None."""
    if isinstance(event.body, ExecutionEnded):
        return END
    command = event.command
    return (command, event.body.identity) if command else None


def replayable(events: list[Event]) -> list[Event]:
    """The history a replay answers from: the current attempt without control markers
    (``store.events.replay_history``), up to a cancellation."""
    events = replay_history(events)
    for i, event in enumerate(events):
        if isinstance(event.body, ExecutionCancelled):
            return events[:i]
    return events


def run_tracked(ctx: ProbeContext | LenientContext, flow: LoadedFlow) -> Decision:
    """``run_handler``, also noting in ``ctx.end_line`` the line the handler returned from."""
    code = getattr(flow.handler, "__code__", None)

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "return" and frame.f_code is code:
            ctx.end_line = frame.f_lineno

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        return run_handler(ctx, flow)
    finally:
        sys.setprofile(previous)


class ProbeContext(ReplayContext):
    """A pure replay that records how it diverged; ``hook(ctx, event)`` runs before
    each recorded command is answered."""

    def __init__(self, *args: Any, hook: Callable[[ProbeContext, Event], None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hook = hook
        self.new_call: tuple[str, str, int] | None = None
        self.end_status = ""
        self.end_line = 0

    def _recorded(self, command: str, identity: str = "", args: list[Arg] | None = None) -> Body | None:
        if self.hook is not None and self.fatal is None and self.pos < len(self.history):
            self.hook(self, self.history[self.pos])
        return super()._recorded(command, identity, args)

    def _diverged(self, event: Event, command: str, identity: str, changed_arguments: str | None = None) -> None:
        self.new_call = (command, identity, self.caller_line())
        super()._diverged(event, command, identity, changed_arguments)

    def check_end(self, status: str, line: int) -> None:
        self.end_status = status
        self.end_line = self.end_line or line
        super().check_end(status, line)


class _Stop(LifecycleSignal):
    """The lenient run needs something the sandbox cannot give."""


class _Sandbox:
    """A ``Live`` backend that writes nothing and answers with placeholders."""

    def __init__(self, now: float) -> None:
        self._now = now
        self.stopped = False

    def now(self) -> float:
        return self._now

    def commit(self, events: list[Event], **effects: Any) -> None:
        pass

    def flow_version(self, flow: str) -> tuple[str, str] | None:
        return ("lenient", "default")

    def statuses(self, ids: list[str]) -> dict[str, str]:
        return {}

    def execution_fields(self, execution_id: str, fields: tuple[str, ...]) -> dict[str, Any] | None:
        return {f: None for f in fields}

    def execution_summary(self, execution_id: str) -> str:
        return ""

    def setting(self, name: str) -> tuple[Any, str | None] | None:
        return None

    def query(self, filter_: Any) -> list[str]:
        return []

    def tree_size(self, root_id: str) -> int:
        return 0

    def waiting_on(self, waiter: str, targets: list[str]) -> list[str]:
        return []

    def __getattr__(self, name: str) -> Any:
        self.stopped = True
        raise _Stop(name)


class LenientContext(ReplayContext):
    """Answers each call from the first unused recorded event with its key; collects calls."""

    def __init__(self, execution: Any, history: list[Event], **kwargs: Any) -> None:
        self.sandbox = _Sandbox(history[-1].at)
        super().__init__(execution, history, live=self.sandbox, **kwargs)
        self.calls: list[Call] = []
        self.stopped = False
        self.end_line = 0
        self._last: int | None = None
        self._unused: dict[Key, deque[int]] = {}
        for i, event in enumerate(history):
            key = event_key(event)
            if key is not None and key != END:
                self._unused.setdefault(key, deque()).append(i)

    def _recorded(self, command: str, identity: str = "", args: list[Arg] | None = None) -> Body | None:
        if len(self.calls) >= MAX_CALLS:
            self.stopped = True
            raise _Stop("too many calls")
        self.calls.append(Call(command, identity, self.caller_line()))
        found = self._unused.get((command, identity))
        if not found:
            self._last = None
            return None
        self._last = index = found.popleft()
        body = self.history[index].body
        if isinstance(body, CommandFailed):
            raise rebuild_error(body.error, self.module_globals)
        return body

    def _outcome(self, started: Body) -> Body | None:
        """The completion (``started.completed_by``) recorded right after the matched call."""
        nxt = None if self._last is None else self._last + 1
        self._last = None
        if nxt is None or nxt >= len(self.history):
            return None
        event = self.history[nxt]
        if type(event.body) is started.completed_by:
            return event.body
        return None

    def step(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> Any:
        body = self._recorded("step", name)
        return None if body is None else revive(body.result, self)  # type: ignore[attr-defined]

    def sleep(self, seconds: float) -> None:
        body = self._recorded("sleep")
        if body is not None:
            self._outcome(body)

    def wait_for(self, ids: list[str], return_when: str, timeout: float | None) -> list[str]:
        body = self._recorded("wait_for", ",".join(ids))
        done = self._outcome(body) if body is not None else None
        if not isinstance(body, WaitStarted) or done is None:
            return list(ids)
        return self._wait_result(body, done)  # type: ignore[arg-type]

    def check_end(self, status: str, line: int) -> None:
        self.end_line = self.end_line or line


def lenient_calls(execution: Any, history: list[Event], flow: LoadedFlow) -> list[Call]:
    """Every call ``flow``'s handler makes when run leniently against ``history``,
    followed by an END call unless the run had to stop early."""
    ctx = LenientContext(execution, history, module_globals=flow.module_globals, flow_file=flow.filename)
    run_tracked(ctx, flow)
    calls = list(ctx.calls)
    if not (ctx.stopped or ctx.sandbox.stopped):
        calls.append(Call(*END, ctx.end_line))
    return calls
