"""Commands with no effect outside the log: log lines, output, the execution's own
fields, and the recorded clock, random numbers and uuids. Their events share the next
commit instead of forcing one."""

from __future__ import annotations

import random as _random
import uuid as _uuid
from typing import Any

from engine.commands.base import Commands, ExecutionInfo
from engine.errors import shorten
from engine.journal import Journal
from flow_api.exceptions import InvalidInputError
from flow_api.handles import revive
from flow_api.runtime import Runtime
from store import values
from store.events import (
    LogRecorded,
    NowRecorded,
    OutputSet,
    RandomRecorded,
    UuidRecorded,
)
from store.model import Status


class PureCommands(Commands):
    """``this.log``, ``this.set_output``, ``this.get`` of its own fields, ``this.now/random/uuid``."""

    def __init__(self, journal: Journal, execution: ExecutionInfo, runtime: Runtime, inputs: dict[str, Any]) -> None:
        super().__init__(journal, execution, runtime)
        self.inputs = inputs
        self._rng: _random.Random | None = None

    def log(self, message: str, level: str) -> None:
        if self.journal.next(LogRecorded) is None:
            self.journal.append(LogRecorded(shorten(message), level))

    def set_output(self, output: dict[str, Any], replace: bool) -> None:
        journal = self.journal
        body = journal.next(OutputSet)
        if body is None:
            what = "output"
            try:
                output = values.roundtrip(output)
                if not replace:  # the end commit stores all output fields together
                    what = "output (all its fields together)"
                    values.encode({**journal.output, **output})
            except values.UnrecordableValueError as exc:
                raise journal.fail("set_output", "", InvalidInputError(
                    f"execution {self.execution_id}: {what} cannot be recorded: {exc}"
                )) from None
            body = journal.append(OutputSet(output, replace))
            journal.output_dirty = True
        if body.replace:
            journal.output = dict(body.values)
        else:
            journal.output.update(body.values)

    def own_field(self, field: str) -> Any:
        self.journal.check_thread("get")
        ex = self.execution
        fields = {
            "input_value": self.inputs,
            "output_value": revive(dict(self.journal.output), self.runtime),
            "status": Status.RUNNING,
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
        body = self.journal.next(NowRecorded) or self.journal.append(NowRecorded(self.live.now()))
        return body.value

    def random(self) -> float:
        body = self.journal.next(RandomRecorded)
        if body is None:
            self._rng = self._rng or _random.Random()
            body = self.journal.append(RandomRecorded(self._rng.random()))
        return body.value

    def uuid(self) -> str:
        body = self.journal.next(UuidRecorded) or self.journal.append(UuidRecorded(str(_uuid.uuid4())))
        return body.value
