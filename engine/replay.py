"""The replay context: the runtime flow_api calls, for one activation of one execution.

It is composition, in the manner of Restate's SDK (context -> command semantics ->
journal): each flow_api call is handed to the command group that knows its meaning
(``engine/commands/``), and every group asks the one ``Journal`` of the activation
whether the log already answers the call (replay) or it must run live and be recorded.

Without a ``Live`` backend the context is a pure function of (history, handler,
inputs): reaching the end of the log raises ``ReplayExhausted``. That is how
``engine replay`` and the unit tests drive it.
"""

from __future__ import annotations

from typing import Any

from engine.commands.base import ExecutionInfo
from engine.commands.children import ChildCommands
from engine.commands.messages import MessageCommands
from engine.commands.pure import PureCommands
from engine.commands.resources import ResourceCommands
from engine.commands.steps import StepCommands
from engine.journal import Journal, Live
from flow_api.handles import revive
from store.events import Event, ExecutionStarted


class ReplayContext:
    """The runtime behind ``system`` and ``this`` for one activation of one execution."""

    def __init__(
        self,
        execution: ExecutionInfo,
        history: list[Event],
        *,
        module_globals: dict[str, Any] | None = None,
        flow_file: str = "<flow>",
        live: Live | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.execution_id = execution.id
        self.journal = journal or Journal(
            execution.id, history, live, module_globals=module_globals, flow_file=flow_file
        )
        started = history[0].body
        assert isinstance(started, ExecutionStarted), "a history starts with ExecutionStarted"
        self.inputs: dict[str, Any] = revive(started.input_value or {}, self)
        self.resumed(execution)

    def resumed(self, execution: ExecutionInfo) -> None:
        """Set up the command groups for ``execution``; again, as its row reads now, when a
        handler parked in this process goes on (``engine.warm``), so that nothing read for
        the last activation (flow versions, tree size) is reused, as after a replay."""
        self.execution = execution
        self.pure = PureCommands(self.journal, execution, self, self.inputs)
        self.steps = StepCommands(self.journal, execution, self)
        self.children = ChildCommands(self.journal, execution, self)
        self.resources = ResourceCommands(self.journal, execution, self)
        self.messages = MessageCommands(self.journal, execution, self)

    @property
    def fatal(self) -> BaseException | None:
        """The error that ends this activation whatever the handler does (see ``Journal``)."""
        return self.journal.fatal

    @property
    def pos(self) -> int:
        """The index in the history of the next recorded event to answer a call."""
        return self.journal.pos

    def check_end(self, status: str, line: int) -> None:
        """The handler ended: leftover recorded commands mean the code diverged."""
        self.journal.check_end(status, line)
