"""Steps (``this.step``: run a function once, record its result) and durable timers
(``this.sleep``: record the due time, then wait holding nothing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine import arguments
from engine.commands.base import Commands
from engine.decision import Suspended
from engine.errors import error_info, step_failure
from flow_api.exceptions import InvalidInputError
from flow_api.handles import revive
from store import values
from store.events import CommandFailed, SleepStarted, StepCompleted, TimerFired
from store.faults import fault_point


class StepCommands(Commands):
    """``this.step`` and ``this.sleep``."""

    def step(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> Any:
        journal = self.journal
        call_args = arguments.step_arguments(fn, args, kwargs)
        body = journal.next(StepCompleted, name, call_args)
        if body is not None:
            return revive(body.result, self.runtime)
        self.live.check_lease()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            failure = step_failure(self.execution_id, name, exc, journal.module_globals)
            journal.commit(CommandFailed("step", name, failure.info, call_args))
            if failure.refused is not None:
                raise failure.refused from exc
            raise
        fault_point("step.ran")
        try:
            encoded = values.roundtrip(result)
        except values.UnrecordableValueError as exc:
            error = InvalidInputError(f"execution {self.execution_id}: step {name!r} returned a value that cannot be recorded: {exc}")
            journal.commit(CommandFailed("step", name, error_info(error), call_args))
            raise error from None
        journal.commit(StepCompleted(name, encoded, call_args))
        return revive(encoded, self.runtime)

    def sleep(self, seconds: float) -> None:
        journal = self.journal
        body = journal.next(SleepStarted)
        if body is None:
            try:
                seconds = values.check_seconds(seconds, "sleep")
            except values.UnrecordableValueError as exc:
                raise journal.fail("sleep", "", InvalidInputError(f"execution {self.execution_id}: {exc}")) from None
            body = journal.append(SleepStarted(seconds, self.live.now() + seconds))
        if journal.outcome(body) is not None:
            return
        while not self.live.now() >= body.due_at:  # (due NaN: never) again after a wake-up of a handler parked here
            journal.suspend(Suspended(wake_at=body.due_at))
        journal.append(TimerFired(self.live.now()))
