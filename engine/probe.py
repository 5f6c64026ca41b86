"""A strict replay that inspects a history: ``ProbeContext`` replays purely
(``live=None``), remembers how it diverged (the new call and its line, or where the
handler ended) and can call a hook before each recorded command is answered (the
debugger stops there). Also the keys both inspecting replays match calls by.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, NoReturn

import msgspec

from engine.activation import run_handler
from engine.decision import Decision
from engine.flows import LoadedFlow
from engine.journal import Journal
from engine.replay import ReplayContext
from store.events import (
    Arg,
    Body,
    Event,
    ExecutionCancelled,
    ExecutionEnded,
    replay_history,
)

Key = tuple[str, str]
END: Key = ("end", "")

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


class TrackedContext(ReplayContext):
    """A replay context that notes the line its handler returned from (``run_tracked``)."""

    end_line: int = 0


def run_tracked(ctx: TrackedContext, flow: LoadedFlow) -> Decision:
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


class ProbeJournal(Journal):
    """A pure journal that remembers the new call it diverged at; ``hook(event)`` runs
    before each recorded command is answered."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hook: Callable[[Event], None] | None = None
        self.new_call: tuple[str, str, int] | None = None

    def recorded(self, command: str, identity: str = "", args: list[Arg] | None = None) -> Body | None:
        if self.hook is not None and self.fatal is None and self.pos < len(self.history):
            self.hook(self.history[self.pos])
        return super().recorded(command, identity, args)

    def diverged(self, event: Event, command: str, identity: str, changed_arguments: str | None = None) -> NoReturn:
        self.new_call = (command, identity, self.caller_line())
        super().diverged(event, command, identity, changed_arguments)


class ProbeContext(TrackedContext):
    """A pure replay that records how it diverged; ``hook(ctx, event)`` runs before
    each recorded command is answered."""

    def __init__(
        self, execution: Any, history: list[Event], *, module_globals: dict[str, Any] | None = None,
        flow_file: str = "<flow>", hook: Callable[[ProbeContext, Event], None] | None = None,
    ) -> None:
        self.probe = ProbeJournal(execution.id, history, None, module_globals=module_globals, flow_file=flow_file)
        super().__init__(execution, history, journal=self.probe)
        if hook is not None:
            self.probe.hook = lambda event: hook(self, event)
        self.end_status = ""

    @property
    def new_call(self) -> tuple[str, str, int] | None:
        """(command, identity, line) of the call that diverged from the history, if one did."""
        return self.probe.new_call

    def check_end(self, status: str, line: int) -> None:
        self.end_status = status
        self.end_line = self.end_line or line
        super().check_end(status, line)


