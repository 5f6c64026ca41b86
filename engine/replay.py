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

from collections.abc import Callable
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

    # -- flow_api's Runtime, delegated ---------------------------------------------------

    def log(self, message: str, level: str) -> None:
        self.pure.log(message, level)

    def set_output(self, output: dict[str, Any], replace: bool) -> None:
        self.pure.set_output(output, replace)

    def own_field(self, field: str) -> Any:
        return self.pure.own_field(field)

    def now(self) -> float:
        return self.pure.now()

    def random(self) -> float:
        return self.pure.random()

    def uuid(self) -> str:
        return self.pure.uuid()

    def step(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> Any:
        return self.steps.step(fn, args, kwargs, name)

    def sleep(self, seconds: float) -> None:
        self.steps.sleep(seconds)

    def create_child(
        self, flow: str, *, name: str | None, run: bool, inputs: dict[str, Any],
        location_inheritance: str | None, child_type: str,
    ) -> str:
        return self.children.create_child(
            flow, name=name, run=run, inputs=inputs, location_inheritance=location_inheritance, child_type=child_type
        )

    def start_child(self, execution_id: str, location_inheritance: str | None = None) -> None:
        self.children.start_child(execution_id, location_inheritance)

    def cancel(self, execution_id: str) -> None:
        self.children.cancel(execution_id)

    def wait_for(self, ids: list[str], return_when: str, timeout: float | None) -> list[str]:
        return self.children.wait_for(ids, return_when, timeout)

    def read_execution(self, execution_id: str, fields: tuple[str, ...]) -> dict[str, Any]:
        return self.resources.read_execution(execution_id, fields)

    def setting_read(self, name: str) -> tuple[bool, Any, str | None]:
        return self.resources.setting_read(name)

    def setting_save(self, name: str, value: Any, description: str | None) -> None:
        self.resources.setting_save(name, value, description)

    def setting_delete(self, name: str) -> None:
        self.resources.setting_delete(name)

    def flow_read(self, name: str) -> bool:
        return self.resources.flow_read(name)

    def query_executions(self, filter_: Any) -> list[str]:
        return self.resources.query_executions(filter_)

    def message(
        self, subject: str, message: str, body: Any, request: str | None, wait: bool | None, timeout: float | None
    ) -> Any:
        return self.messages.message(subject, message, body, request, wait, timeout)

    def create_connection(
        self, connector: str | None, connector_type: str | None, *, name: str | None, run: bool,
        params: dict[str, Any],
    ) -> str:
        return self.messages.create_connection(connector, connector_type, name=name, run=run, params=params)

    def connector_read(self, name: str) -> tuple[bool, str | None, Any]:
        return self.messages.connector_read(name)

    def connector_save(self, name: str, connector_type: str, value: dict[str, Any]) -> None:
        self.messages.connector_save(name, connector_type, value)
