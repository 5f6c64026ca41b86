"""The journal: the cursor of one activation over its execution's recorded events.

Every flow_api command asks the journal first (``next``): if the log has a next event it
must be the same command with the same identity and arguments (else the execution halts
with ``NondeterminismError``) and its recorded body is returned, typed; past the end of the
log ``next`` returns None and the command runs live, then ``append``s its event (to share
the next durable commit) or ``commit``s it now. The journal also owns what ends a call
early: a recorded failure raised again, a suspension, and a fatal error that the handler
must not get past (see ``MAX_CALLS_AFTER_FATAL``).

Without a ``Live`` backend the journal is a pure function of the history: reaching its end
raises ``ReplayExhausted``. The command groups (``engine/commands/``) hold a journal; the
``ReplayContext`` delegates flow_api's calls to them.
"""

from __future__ import annotations

import sys
import threading
from types import FrameType
from collections.abc import Callable
from typing import Any, NoReturn, Protocol, TypeVar

from engine import arguments, divergence
from engine.decision import ReplayExhausted, Suspended
from engine.errors import error_info, rebuild_error
from flow_api.exceptions import SuspensionSwallowedError, WrongThreadError
from store.events import Arg, Body, CommandFailed, Event, EventBody, ExecutionEnded
from store.model import ConnectorWrite, MessageRow, NewExecution

#: Calls a handler may make after a fatal error (nondeterminism, a swallowed suspension)
#: before the journal forces it to unwind.
MAX_CALLS_AFTER_FATAL = 100

#: Children created (``this.flow``) are committed together with the next commit, at the
#: latest before a step runs, a wait, a sleep or a read, or when this many are pending.
MAX_UNFLUSHED_CHILDREN = 256
_FLUSH_BEFORE = frozenset({"step", "sleep", "wait_for", "read", "executions", "run"})

B = TypeVar("B", bound=Body)


class Live(Protocol):
    """What a journal and its command groups need to run commands past the end of the log."""

    def now(self) -> float: ...
    def commit(self, events: list[Event], **effects: Any) -> None: ...
    def check_lease(self) -> None: ...
    def flow_version(self, flow: str) -> tuple[str, str] | None: ...
    def statuses(self, ids: list[str]) -> dict[str, str]: ...
    def execution_fields(self, execution_id: str, fields: tuple[str, ...]) -> dict[str, Any] | None: ...
    def execution_summary(self, execution_id: str) -> str: ...
    def setting(self, name: str) -> tuple[Any, str | None] | None: ...
    def query(self, filter_: Any) -> list[str]: ...
    def tree_size(self, root_id: str) -> int: ...
    def waiting_on(self, waiter: str, targets: list[str]) -> list[str]: ...
    def message_state(self, message_id: str) -> MessageRow | None: ...
    def connector(self, name: str) -> ConnectorWrite | None: ...
    def remember_params(self, connection_id: str, params: dict[str, Any]) -> None: ...


class Journal:
    """The recorded events of one execution, a cursor over them, and what is still to commit."""

    def __init__(
        self, execution_id: str, history: list[Event], live: Live | None, *,
        module_globals: dict[str, Any] | None = None, flow_file: str = "<flow>",
    ) -> None:
        self.execution_id = execution_id
        self.history = history
        self.live = live
        self.module_globals = module_globals
        self.flow_file = flow_file
        self.pos = 1
        self.next_seq = history[-1].seq + 1
        self.pending: list[Event] = []
        self.output: dict[str, Any] = {}
        self.output_dirty = False
        self.unflushed: list[NewExecution] = []
        self.fatal: BaseException | None = None
        self.unwinding = False
        self.call_args: list[Arg] | None = None
        self.thread = threading.get_ident()
        #: Set by a worker with a warm cache (``engine.warm.park``): keeps the handler at its
        #: wait; True when it is to go on there.
        self.park: Callable[[Suspended], bool] | None = None
        self._calls_after_fatal = 0

    # -- matching recorded commands -----------------------------------------------------

    def next(self, kind: type[B], identity: str = "", args: list[Arg] | None = None, *,
             command: str | None = None) -> B | None:
        """The recorded ``kind`` event of this command, or None when it must run live.
        ``command`` defaults to ``kind.command`` (a kind that records several commands,
        such as ``ChildCreated``, names its own)."""
        body = self.recorded(command or kind.command, identity, args)
        assert body is None or isinstance(body, kind), f"{command or kind.command} recorded as {type(body).__name__}"
        return body

    def recorded(self, command: str, identity: str = "", args: list[Arg] | None = None) -> Body | None:
        """The recorded outcome of this command, or None when it must run live. ``args``
        (the call's arguments) must match the recorded ones where the log has them."""
        self.check_thread(command)
        self.call_args = args
        if self.fatal is not None:
            self._calls_after_fatal += 1
            if self._calls_after_fatal > MAX_CALLS_AFTER_FATAL:
                self._force_unwind()
            raise self.fatal
        if self.pos >= len(self.history):
            if self.live is None:
                raise ReplayExhausted(self.pos)
            if self.unflushed and command in _FLUSH_BEFORE:
                self.write()  # children created so far must exist before this reads or waits
            return None
        event = self.history[self.pos]
        body = event.body
        recorded_command = body.failed_command if type(body) is CommandFailed else body.command
        if recorded_command != command or body.identity != identity:
            self.diverged(event, command, identity)
        recorded_args: list[Arg] | None = getattr(body, "args", None)
        if not arguments.same(recorded_args, args):
            assert recorded_args is not None and args is not None
            self.diverged(event, command, identity, arguments.difference(recorded_args, args))
        self.pos += 1
        if type(body) is CommandFailed:
            raise rebuild_error(body.error, self.module_globals)
        return body

    def outcome(self, started: Body) -> Body | None:
        """The event that completed the waiting command ``started`` (its ``completed_by``), if recorded."""
        if self.pos < len(self.history):
            body = self.history[self.pos].body
            if type(body) is started.completed_by:
                self.pos += 1
                return body
            return None
        if self.live is None:
            raise ReplayExhausted(self.pos)
        return None

    def diverged(self, event: Event, command: str, identity: str, changed_arguments: str | None = None) -> NoReturn:
        error = divergence.changed_call(
            self.execution_id, event, command, identity, self.caller_line(), self.flow_file, changed_arguments
        )
        self.fatal = error
        raise error

    def check_thread(self, command: str) -> None:
        """A call from a thread the handler started is refused there, and the execution
        fails even if that thread swallows the error."""
        if threading.get_ident() == self.thread:
            return
        error = WrongThreadError(
            f"execution {self.execution_id}: {command} was called from thread {threading.current_thread().name!r}, "
            "but flow_api calls are accepted only from the thread running the handler, because a replay answers "
            "calls in the order they are made and threads change that order. For parallel work start child "
            "executions: this.flow(..., wait=False) for each, then this.wait_for(...)."
        )
        if self.fatal is None:
            self.fatal = error
        raise error

    def caller_line(self) -> int:
        """The line of the flow script that made the current call."""
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            if frame.f_globals is self.module_globals:
                return frame.f_lineno
            frame = frame.f_back
        return 0

    # -- recording what ran live ---------------------------------------------------------

    @property
    def live_backend(self) -> Live:
        """The live backend: only a command that ``next`` answered with None asks for it."""
        assert self.live is not None, "a command without a recorded outcome runs live"
        return self.live

    def append(self, body: B, line: int | None = None) -> B:
        """Record ``body`` to share the next commit; return it."""
        recorded: EventBody = body  # type: ignore[assignment]  # every Body subclass is in the union
        event = Event(self.next_seq, self.live_backend.now(), recorded, self.caller_line() if line is None else line)
        self.next_seq += 1
        self.pending.append(event)
        return body

    def commit(self, body: B, **effects: Any) -> B:
        """Append ``body`` and commit it with everything pending, durably, now."""
        self.append(body)
        self.write(**effects)
        return body

    def write(self, **effects: Any) -> None:
        """Commit the pending events, output and children in one transaction."""
        events, self.pending = self.pending, []
        if self.output_dirty:
            effects["output_value"] = self.output
            self.output_dirty = False
        if self.unflushed:
            effects["creates"] = [*self.unflushed, *effects.get("creates", ())]
            self.unflushed = []
        self.live_backend.commit(events, **effects)

    def create(self, new: NewExecution) -> None:
        """Create ``new`` with the next commit, so a fan-out shares commits."""
        self.unflushed.append(new)
        if len(self.unflushed) >= MAX_UNFLUSHED_CHILDREN:
            self.write()

    def fail(self, command: str, identity: str, error: Exception) -> Exception:
        """Record that the command in progress failed with ``error``; return it to raise."""
        self.append(CommandFailed(command, identity, error_info(error), self.call_args))
        return error

    # -- ending the activation -----------------------------------------------------------

    def suspend(self, signal: Suspended) -> None:
        """Unwind the handler; should it swallow the signal, every later call fails. With
        ``park`` set, the handler may instead stay here and return when the execution is
        woken in this process, with nothing recorded since: the caller checks its wait again."""
        if self.park is not None and self.park(signal):
            return
        where = f"{divergence.line_text(self.caller_line())} of {self.flow_file}"
        self.fatal = SuspensionSwallowedError(
            f"execution {self.execution_id}: the handler caught the engine's suspension at "
            f"{where} with a bare `except:` or `except BaseException:` and "
            "carried on. Catch `Exception` instead, or add `except flow_api.LifecycleSignal: raise` before it."
        )
        raise signal

    def committed(self) -> None:
        """The pending events were committed with the suspension the handler is parked
        at: they are history now, as a replay would have read them."""
        self.history.extend(self.pending)
        self.pos = len(self.history)
        self.pending, self.unflushed, self.output_dirty = [], [], False

    def check_end(self, status: str, line: int) -> None:
        """The handler ended: leftover recorded commands mean the code diverged."""
        if self.fatal is not None:
            return
        if self.pos < len(self.history):
            event = self.history[self.pos]
            if isinstance(event.body, ExecutionEnded):
                return
            left = len(self.history) - self.pos
            self.fatal = divergence.ended_early(self.execution_id, event, status, line, self.flow_file, left)

    def end(self, body: EventBody, line: int) -> None:
        """Record the end of the handler (live runs only)."""
        if self.live is not None:
            self.append(body, line)

    def _force_unwind(self) -> None:
        """The handler keeps swallowing the fatal error (a bare ``except:`` in a loop):
        trace its frames and raise the error again at every line it runs, so that even
        an ``except: pass`` cannot hold the activation (run_handler removes the trace)."""
        fatal, flow_globals = self.fatal, self.module_globals
        assert fatal is not None

        def trace(frame: FrameType, event: str, arg: Any) -> Any:
            if event == "line" and frame.f_globals is flow_globals:
                raise fatal
            return trace

        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            if frame.f_globals is flow_globals:
                frame.f_trace = trace
            frame = frame.f_back
        sys.settrace(trace)
        self.unwinding = True
