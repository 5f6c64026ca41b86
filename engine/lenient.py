"""A lenient replay for aligning changed code with a history; it touches nothing.

``LenientContext`` lets changed code run on past a divergence so its calls can be
aligned with the recorded ones: each call is answered from the first unused recorded
event with the same command and identity, anywhere in the history; a call the history
cannot answer gets a placeholder (a step returns None, a wait returns at once) from a
sandbox that writes nothing. A call that needs more than the sandbox offers stops it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, NoReturn

from engine.commands.children import ChildCommands
from engine.commands.steps import StepCommands
from engine.errors import rebuild_error
from engine.flows import LoadedFlow
from engine.journal import Journal
from engine.probe import END, Call, Key, TrackedContext, event_key, run_tracked
from flow_api.exceptions import LifecycleSignal
from flow_api.handles import revive
from store.events import (
    Arg,
    Body,
    CommandFailed,
    Event,
    SleepStarted,
    StepCompleted,
    WaitCompleted,
    WaitStarted,
)
from store.model import ConnectorWrite, MessageRow

#: A lenient run stops after this many calls (a loop polling a placeholder never ends).
MAX_CALLS = 10_000


class _Stop(LifecycleSignal):
    """The lenient run needs something the sandbox cannot give."""


class _Sandbox:
    """A ``Live`` backend that writes nothing and answers with placeholders. What it
    cannot answer (a stored message or connector, a lease) stops the lenient run."""

    def __init__(self, now: float) -> None:
        self._now = now
        self.stopped = False

    def now(self) -> float:
        return self._now

    def commit(self, events: list[Event], **effects: Any) -> None:
        pass

    def check_lease(self) -> None:
        self._stop("check_lease")

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

    def message_state(self, message_id: str) -> MessageRow | None:
        self._stop("message_state")

    def connector(self, name: str) -> ConnectorWrite | None:
        self._stop("connector")

    def remember_params(self, connection_id: str, params: dict[str, Any]) -> None:
        self._stop("remember_params")

    def _stop(self, operation: str) -> NoReturn:
        """The lenient run cannot go on without a real store: it ends here, and its calls so far stand."""
        self.stopped = True
        raise _Stop(f"a lenient replay cannot answer {operation} without a store")


class LenientJournal(Journal):
    """Answers each call from the first unused recorded event with its key; collects calls."""

    def __init__(self, execution_id: str, history: list[Event], sandbox: _Sandbox, **kwargs: Any) -> None:
        super().__init__(execution_id, history, sandbox, **kwargs)
        self.calls: list[Call] = []
        self.stopped = False
        self._last: int | None = None
        self._unused: dict[Key, deque[int]] = {}
        for i, event in enumerate(history):
            key = event_key(event)
            if key is not None and key != END:
                self._unused.setdefault(key, deque()).append(i)

    def recorded(self, command: str, identity: str = "", args: list[Arg] | None = None) -> Body | None:
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

    def outcome(self, started: Body) -> Body | None:
        """The completion (``started.completed_by``) recorded right after the matched call."""
        nxt = None if self._last is None else self._last + 1
        self._last = None
        if nxt is None or nxt >= len(self.history):
            return None
        event = self.history[nxt]
        if type(event.body) is started.completed_by:
            return event.body
        return None


class _LenientSteps(StepCommands):
    """Steps answered from any matching recorded event, None otherwise; timers never wait."""

    journal: LenientJournal

    def step(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> Any:
        body = self.journal.next(StepCompleted, name)
        return None if body is None else revive(body.result, self.runtime)

    def sleep(self, seconds: float) -> None:
        body = self.journal.next(SleepStarted)
        if body is not None:
            self.journal.outcome(body)


class _LenientChildren(ChildCommands):
    """Waits answered from the recorded outcome, or at once as if every target ended."""

    journal: LenientJournal

    def wait_for(self, ids: list[str], return_when: str, timeout: float | None) -> list[str]:
        body = self.journal.next(WaitStarted, ",".join(ids))
        done = self.journal.outcome(body) if body is not None else None
        if body is None or not isinstance(done, WaitCompleted):
            return list(ids)
        return self.wait_result(body, done)


class LenientContext(TrackedContext):
    """Runs changed code against a history, answering what it can and never waiting."""

    def __init__(self, execution: Any, history: list[Event], **kwargs: Any) -> None:
        self.sandbox = _Sandbox(history[-1].at)
        self.lenient = LenientJournal(execution.id, history, self.sandbox, **kwargs)
        super().__init__(execution, history, journal=self.lenient)
        self.steps = _LenientSteps(self.lenient, execution, self)
        self.children = _LenientChildren(self.lenient, execution, self)

    def check_end(self, status: str, line: int) -> None:
        self.end_line = self.end_line or line


def lenient_calls(execution: Any, history: list[Event], flow: LoadedFlow) -> list[Call]:
    """Every call ``flow``'s handler makes when run leniently against ``history``,
    followed by an END call unless the run had to stop early."""
    ctx = LenientContext(execution, history, module_globals=flow.module_globals, flow_file=flow.filename)
    run_tracked(ctx, flow)
    calls = list(ctx.lenient.calls)
    if not (ctx.lenient.stopped or ctx.sandbox.stopped):
        calls.append(Call(*END, ctx.end_line))
    return calls
