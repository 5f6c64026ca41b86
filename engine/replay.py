"""The replay context: answers each flow_api command from the log, or runs it live.

A ``ReplayContext`` is handed to flow_api as its runtime. For every command it looks
at the next recorded event: if there is one, it must be the same command with the same
identity (else ``NondeterminismError``) and its recorded outcome is returned. Past the
end of the log the command runs live through a ``Live`` backend and its outcome is
appended: commands with no outside effect (log, output, now, random, uuid, reads) go
to a pending list that shares the next durable commit.

Without a ``Live`` backend the context is a pure function of (history, handler,
inputs): reaching the end of the log raises ``ReplayExhausted``. That is how
``engine replay`` and the unit tests drive it.
"""

from __future__ import annotations

import random as _random
import sys
import threading
import uuid as _uuid
from collections.abc import Callable
from types import FrameType
from typing import Any, Protocol

from engine import arguments, divergence
from engine.decision import ReplayExhausted, Suspended
from engine.errors import error_info, rebuild_error, shorten, step_failure
from engine.ids import child_id
from engine.replay_outside import OutsideCommands
from engine.replay_resources import ResourceCommands
from flow_api.exceptions import (
    DependencyFailedError,
    DependencyTimeoutError,
    InvalidInputError,
    ResourceNotFoundError,
    SuspensionSwallowedError,
    WrongThreadError,
)
from flow_api.resources import revive
from store import values
from store.events import (
    Arg,
    Body,
    ChildCancelled,
    ChildCreated,
    ChildStarted,
    CommandFailed,
    Event,
    EventBody,
    ExecutionEnded,
    ExecutionStarted,
    LogRecorded,
    NowRecorded,
    OutputSet,
    RandomRecorded,
    SleepStarted,
    StepCompleted,
    TimerFired,
    UuidRecorded,
    WaitCompleted,
    WaitStarted,
)
from store.faults import fault_point
from store.model import (
    ENDED_STATUSES,
    FAILED_STATUSES,
    ConnectorWrite,
    MessageRow,
    NewExecution,
    WaitSpec,
)

#: Calls a handler may make after a fatal error (nondeterminism, a swallowed suspension)
#: before the context forces it to unwind.
MAX_CALLS_AFTER_FATAL = 100

#: Children created (``this.flow``) are committed together with the next commit, at the
#: latest before a step runs, a wait, a sleep or a read, or when this many are pending.
MAX_UNFLUSHED_CHILDREN = 256
_FLUSH_BEFORE = frozenset({"step", "sleep", "wait_for", "read", "executions", "run"})

#: How deep a tree of executions starting executions may grow before it is refused.
MAX_DEPTH = 50

#: How many executions one tree (a top-level execution and all its descendants) may hold:
#: a flow that starts itself twice at every level would otherwise grow without bound.
MAX_TREE_EXECUTIONS = 10_000


class Live(Protocol):
    """What a context needs to run commands past the end of the log."""

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


class ExecutionInfo(Protocol):
    """The fields of the execution a context runs (an ``ExecutionRow`` has them)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def flow(self) -> str: ...
    @property
    def project(self) -> str: ...
    @property
    def depth(self) -> int: ...
    @property
    def root_id(self) -> str: ...


class ReplayContext(ResourceCommands, OutsideCommands):
    """The runtime behind ``system`` and ``this`` for one activation of one execution."""

    def __init__(
        self,
        execution: ExecutionInfo,
        history: list[Event],
        *,
        module_globals: dict[str, Any] | None = None,
        flow_file: str = "<flow>",
        live: Live | None = None,
    ) -> None:
        self.execution_id = execution.id
        self.execution = execution
        self.history = history
        self.live = live
        self.flow_file = flow_file
        self.module_globals = module_globals
        started = history[0].body
        assert isinstance(started, ExecutionStarted), "a history starts with ExecutionStarted"
        self.inputs: dict[str, Any] = revive(started.input_value or {}, self)
        self.pending: list[Event] = []
        self.output: dict[str, Any] = {}
        self.output_dirty = False
        self.pos = 1
        self.next_seq = history[-1].seq + 1
        self.fatal: BaseException | None = None
        self.unflushed: list[NewExecution] = []
        self._tree_size: int | None = None
        self._flow_versions: dict[str, tuple[str, str] | None] = {}
        self._calls_after_fatal = 0
        self.unwinding = False
        self._rng: _random.Random | None = None
        self.thread = threading.get_ident()
        self.call_args: list[Arg] | None = None

    # -- the log cursor ------------------------------------------------------------

    def _recorded(self, command: str, identity: str = "", args: list[Arg] | None = None) -> Body | None:
        """The recorded outcome of this command, or None when it must run live. ``args``
        (the call's arguments) must match the recorded ones where the log has them."""
        if threading.get_ident() != self.thread:
            self._wrong_thread(command)
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
                self._write()  # children created so far must exist before this reads or waits
            return None
        event = self.history[self.pos]
        body = event.body
        recorded_command = body.failed_command if type(body) is CommandFailed else body.command
        if recorded_command != command or body.identity != identity:
            self._diverged(event, command, identity)
        recorded_args: list[Arg] | None = getattr(body, "args", None)
        if not arguments.same(recorded_args, args):
            assert recorded_args is not None and args is not None
            self._diverged(event, command, identity, arguments.difference(recorded_args, args))
        self.pos += 1
        if type(body) is CommandFailed:
            raise rebuild_error(body.error, self.module_globals)
        return body

    def _outcome(self, started: Body) -> Body | None:
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

    def _diverged(self, event: Event, command: str, identity: str, changed_arguments: str | None = None) -> None:
        error = divergence.changed_call(
            self.execution_id, event, command, identity, self.caller_line(), self.flow_file, changed_arguments
        )
        self.fatal = error
        raise error

    def _wrong_thread(self, command: str) -> None:
        """A call from a thread the handler started: refused there, and the execution
        fails even if that thread swallows the error."""
        error = WrongThreadError(
            f"execution {self.execution_id}: {command} was called from thread {threading.current_thread().name!r}, "
            "but flow_api calls are accepted only from the thread running the handler, because a replay answers "
            "calls in the order they are made and threads change that order. For parallel work start child "
            "executions: this.flow(..., wait=False) for each, then this.wait_for(...)."
        )
        if self.fatal is None:
            self.fatal = error
        raise error

    def _force_unwind(self) -> None:
        """The handler keeps swallowing the fatal error (a bare ``except:`` in a loop):
        trace its frames and raise the error again at every line it runs, so that even
        an ``except: pass`` cannot hold the activation (run_handler removes the trace)."""
        fatal, flow_globals = self.fatal, self.module_globals

        def trace(frame: FrameType, event: str, arg: Any) -> Any:
            if event == "line" and frame.f_globals is flow_globals:
                raise fatal  # type: ignore[misc]
            return trace

        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            if frame.f_globals is flow_globals:
                frame.f_trace = trace
            frame = frame.f_back
        sys.settrace(trace)
        self.unwinding = True

    def _where(self, line: int) -> str:
        return f"{divergence.line_text(line)} of {self.flow_file}"

    def caller_line(self) -> int:
        """The line of the flow script that made the current call."""
        frame = sys._getframe(2)
        while frame is not None:
            if frame.f_globals is self.module_globals:
                return frame.f_lineno
            frame = frame.f_back  # type: ignore[assignment]
        return 0

    def _append(self, body: EventBody, line: int | None = None) -> Event:
        assert self.live is not None
        event = Event(self.next_seq, self.live.now(), body, self.caller_line() if line is None else line)
        self.next_seq += 1
        self.pending.append(event)
        return event

    def _commit(self, body: EventBody, **effects: Any) -> EventBody:
        """Append ``body`` and commit it with everything pending, durably, now."""
        self._append(body)
        self._write(**effects)
        return body

    def _write(self, **effects: Any) -> None:
        """Commit the pending events, output and children in one transaction."""
        events, self.pending = self.pending, []
        if self.output_dirty:
            effects["output_value"] = self.output
            self.output_dirty = False
        if self.unflushed:
            effects["creates"] = [*self.unflushed, *effects.get("creates", ())]
            self.unflushed = []
        assert self.live is not None
        self.live.commit(events, **effects)

    def _fail(self, command: str, identity: str, error: Exception) -> Exception:
        """Record that the command in progress failed with ``error``; return it to raise."""
        self._append(CommandFailed(command, identity, error_info(error), self.call_args))
        return error

    # -- pure commands ---------------------------------------------------------------

    def log(self, message: str, level: str) -> None:
        if self._recorded("log") is None:
            self._append(LogRecorded(shorten(message), level))

    def set_output(self, output: dict[str, Any], replace: bool) -> None:
        body = self._recorded("set_output")
        if body is None:
            what = "output"
            try:
                output = values.roundtrip(output)
                if not replace:  # the end commit stores all output fields together
                    what = "output (all its fields together)"
                    values.encode({**self.output, **output})
            except values.UnrecordableValueError as exc:
                raise self._fail("set_output", "", InvalidInputError(
                    f"execution {self.execution_id}: {what} cannot be recorded: {exc}"
                )) from None
            body = self._append(OutputSet(output, replace)).body
            self.output_dirty = True
        assert isinstance(body, OutputSet)
        if body.replace:
            self.output = dict(body.values)
        else:
            self.output.update(body.values)

    def own_field(self, field: str) -> Any:
        if threading.get_ident() != self.thread:
            self._wrong_thread("get")
        ex = self.execution
        fields = {
            "input_value": self.inputs,
            "output_value": revive(dict(self.output), self),
            "status": "RUNNING",
            "message": None,
            "name": ex.name,
            "id": ex.id,
            "flow": ex.flow,
            "project": ex.project,
        }
        if field not in fields:
            raise InvalidInputError(f"unknown execution field {field!r}; known: {', '.join(fields)}")
        return fields[field]

    def now(self) -> float:
        body = self._recorded("now")
        if body is None:
            assert self.live is not None
            body = self._append(NowRecorded(self.live.now())).body
        return body.value  # type: ignore[attr-defined, no-any-return]

    def random(self) -> float:
        body = self._recorded("random")
        if body is None:
            self._rng = self._rng or _random.Random()
            body = self._append(RandomRecorded(self._rng.random())).body
        return body.value  # type: ignore[attr-defined, no-any-return]

    def uuid(self) -> str:
        body = self._recorded("uuid")
        if body is None:
            body = self._append(UuidRecorded(str(_uuid.uuid4()))).body
        return body.value  # type: ignore[attr-defined, no-any-return]

    # -- steps and timers ------------------------------------------------------------

    def step(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> Any:
        call_args = arguments.step_arguments(fn, args, kwargs)
        body = self._recorded("step", name, call_args)
        if body is not None:
            return revive(body.result, self)  # type: ignore[attr-defined]
        self.live.check_lease()  # type: ignore[union-attr]  # live: _recorded returned None
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            failure = step_failure(self.execution_id, name, exc, self.module_globals)
            self._commit(CommandFailed("step", name, failure.info, call_args))
            if failure.refused is not None:
                raise failure.refused from exc
            raise
        fault_point("step.ran")
        try:
            encoded = values.roundtrip(result)
        except values.UnrecordableValueError as exc:
            error = InvalidInputError(f"execution {self.execution_id}: step {name!r} returned a value that cannot be recorded: {exc}")
            self._commit(CommandFailed("step", name, error_info(error), call_args))
            raise error from None
        self._commit(StepCompleted(name, encoded, call_args))
        return revive(encoded, self)

    def sleep(self, seconds: float) -> None:
        body = self._recorded("sleep")
        if body is None:
            assert self.live is not None
            try:
                seconds = values.check_seconds(seconds, "sleep")
            except values.UnrecordableValueError as exc:
                raise self._fail("sleep", "", InvalidInputError(f"execution {self.execution_id}: {exc}")) from None
            body = self._append(SleepStarted(seconds, self.live.now() + seconds)).body
        assert isinstance(body, SleepStarted)
        if self._outcome(body) is not None:
            return
        assert self.live is not None
        if self.live.now() >= body.due_at:
            self._append(TimerFired(self.live.now()))
            return
        self._suspend(Suspended(wake_at=body.due_at))

    # -- children ----------------------------------------------------------------------

    def create_child(
        self, flow: str, *, name: str | None, run: bool, inputs: dict[str, Any],
        location_inheritance: str | None, child_type: str,
    ) -> str:
        call_args = [arguments.argument("name", name), arguments.argument("run", run),
                     *arguments.mapping_arguments(inputs, "inputs[{!r}]")]
        body = self._recorded("flow", flow, call_args)
        if body is not None:
            return body.child_id  # type: ignore[attr-defined, no-any-return]
        assert self.live is not None
        ex = self.execution
        if ex.depth + 1 > MAX_DEPTH:
            raise self._fail("flow", flow, InvalidInputError(
                f"execution {ex.id}: starting flow {flow!r} would nest executions {ex.depth + 1} deep, over the "
                f"limit of {MAX_DEPTH}; does the flow start itself without an end condition?"
            ))
        if self._tree_size is None:
            self._tree_size = self.live.tree_size(ex.root_id) + len(self.unflushed)
        if self._tree_size >= MAX_TREE_EXECUTIONS:
            raise self._fail("flow", flow, InvalidInputError(
                f"execution {ex.id}: starting flow {flow!r} would grow the tree of execution {ex.root_id} past "
                f"the limit of {MAX_TREE_EXECUTIONS} executions; does a flow start itself without an end condition?"
            ))
        if flow not in self._flow_versions:
            self._flow_versions[flow] = self.live.flow_version(flow)
        found = self._flow_versions[flow]
        if found is None:
            raise self._fail("flow", flow, ResourceNotFoundError(
                f"execution {ex.id}: flow {flow!r} does not exist; register it with `engine flows sync DIR` "
                "or put its file beside the flow that starts it"
            ))
        version, flow_project = found
        try:
            encoded = values.roundtrip(inputs)
        except values.UnrecordableValueError as exc:
            raise self._fail("flow", flow, InvalidInputError(
                f"execution {ex.id}: inputs for flow {flow!r} cannot be recorded: {exc}"
            )) from None
        project = _location(location_inheritance, ex.project, flow_project)
        new_id = child_id(ex.id, self.next_seq)
        fault_point("child.created")
        created = self._append(ChildCreated(new_id, flow, version, name, run, child_type, call_args))
        self.unflushed.append(NewExecution(  # created with the next commit, so a fan-out shares commits
            id=new_id, flow=flow, flow_version=version, input_value=encoded,
            status="QUEUED" if run else "PAUSED", type=child_type, name=name, parent_id=ex.id,
            root_id=ex.root_id, depth=ex.depth + 1,
            project=project, created_at=created.at,
        ))
        self._tree_size += 1
        if len(self.unflushed) >= MAX_UNFLUSHED_CHILDREN:
            self._write()
        return new_id

    def start_child(self, execution_id: str, location_inheritance: str | None = None) -> None:
        if self._recorded("run", execution_id) is not None:
            return
        effects: dict[str, Any] = {"start": [execution_id]}
        if location_inheritance is not None:
            assert self.live is not None
            target = self.live.execution_fields(execution_id, ("flow",))
            found = self.live.flow_version(target["flow"]) if target else None
            flow_project = found[1] if found else self.execution.project
            effects["relocate"] = {execution_id: _location(location_inheritance, self.execution.project, flow_project)}
        self._commit(ChildStarted(execution_id), **effects)

    def cancel(self, execution_id: str) -> None:
        if self._recorded("cancel", execution_id) is None:
            self._commit(ChildCancelled(execution_id), cancel=[execution_id])

    def wait_for(self, ids: list[str], return_when: str, timeout: float | None) -> list[str]:
        identity = ",".join(ids)
        body = self._recorded("wait_for", identity)
        if body is None:
            assert self.live is not None
            statuses = self.live.statuses(ids)
            unknown = sorted(set(ids) - set(statuses))
            if unknown:
                raise self._fail("wait_for", identity, ResourceNotFoundError(
                    f"execution {self.execution_id}: cannot wait for unknown execution(s) {', '.join(unknown)}"
                ))
            try:
                deadline = None if timeout is None else self.live.now() + values.check_seconds(timeout, "timeout")
            except values.UnrecordableValueError as exc:
                raise self._fail("wait_for", identity, InvalidInputError(f"execution {self.execution_id}: wait_for: {exc}")) from None
            paused = [i for i in dict.fromkeys(ids) if statuses[i] == "PAUSED" and self._is_my_child(i)]
            wait = WaitStarted(list(ids), return_when, deadline, paused)
            body = self._commit(wait, start=paused) if paused else self._append(wait).body
        assert isinstance(body, WaitStarted)
        done = self._outcome(body)
        if done is None:
            done = self._check_wait(body)
        return self._wait_result(body, done)  # type: ignore[arg-type]

    def _is_my_child(self, execution_id: str) -> bool:
        """Waiting on one's own PAUSED child starts it (a created-but-not-run child that
        nothing else would start); other PAUSED executions wait for `engine start`."""
        assert self.live is not None
        fields = self.live.execution_fields(execution_id, ("parent_id",))
        return fields is not None and fields["parent_id"] == self.execution_id

    def _check_wait(self, wait: WaitStarted) -> WaitCompleted:
        assert self.live is not None
        statuses = self.live.statuses(wait.targets)
        ended = {i: statuses[i] for i in dict.fromkeys(wait.targets) if statuses[i] in ENDED_STATUSES}
        failed = [i for i in ended if ended[i] in FAILED_STATUSES]
        targets = set(wait.targets)
        needed = 1 if wait.return_when == "FIRST_ENDED" else len(targets)
        wake_on_failure = wait.return_when == "ALL_SUCCEEDED"
        timed_out = wait.deadline is not None and self.live.now() >= wait.deadline
        if len(ended) >= needed or (wake_on_failure and failed) or timed_out:
            failures = {i: self.live.execution_summary(i) for i in failed}
            done = WaitCompleted(ended, timed_out and len(ended) < needed and not failed, failures)
            self._append(done)
            return done
        pending = sorted(targets - set(ended))
        deadlocked = [self.execution_id] if self.execution_id in targets else []
        deadlocked += self.live.waiting_on(self.execution_id, pending)
        if deadlocked:  # recorded as the wait's outcome: these never end while this one waits
            done = WaitCompleted(ended, False, {i: self._deadlock(i) for i in deadlocked})
            self._append(done)
            return done
        self._suspend(Suspended(wait=WaitSpec(sorted(targets), needed, wake_on_failure, wait.deadline)))
        raise AssertionError("unreachable")

    def _deadlock(self, target: str) -> str:
        who = "it is this execution" if target == self.execution_id else "it waits, directly or through others, for it"
        return (
            f"execution {self.execution_id} cannot wait for {target}: {who}, so neither would ever end. "
            "Leave it out of the wait (when the executions come from system.executions, leave out your parent)."
        )

    def _wait_result(self, wait: WaitStarted, done: WaitCompleted) -> list[str]:
        for target in wait.targets:  # a failure always raises with ALL_SUCCEEDED, a deadlock always
            if target in done.failures and (wait.return_when == "ALL_SUCCEEDED" or target not in done.statuses):
                raise DependencyFailedError(done.failures[target], target, done.statuses.get(target, "WAITING"))
        if done.timed_out:
            raise DependencyTimeoutError(
                f"execution {self.execution_id}: waited for {', '.join(wait.targets)} "
                f"({wait.return_when}) until the timeout; {len(done.statuses)} of them had ended"
            )
        return [t for t in wait.targets if t in done.statuses]

    # -- the end ----------------------------------------------------------------------

    def _suspend(self, signal: Suspended) -> None:
        """Unwind the handler. Should it swallow the signal, every later call fails."""
        self.fatal = SuspensionSwallowedError(
            f"execution {self.execution_id}: the handler caught the engine's suspension at "
            f"{self._where(self.caller_line())} with a bare `except:` or `except BaseException:` and "
            "carried on. Catch `Exception` instead, or add `except flow_api.LifecycleSignal: raise` before it."
        )
        raise signal

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


def _location(inheritance: str | None, parent_project: str, flow_project: str) -> str:
    mode = (inheritance or "created_by").lower().replace("-", "_")
    if mode == "created_by":
        return parent_project
    if mode == "default":
        return "default"
    if mode in ("resource", "wrapped_resource"):
        return flow_project
    raise InvalidInputError(
        f"location_inheritance must be created_by, default, resource or wrapped_resource, not {inheritance!r}"
    )


