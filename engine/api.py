"""The engine's Python entry point: what the CLI, tests and benchmarks call."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.connectors import ConnectorError, get_connector
from engine.errors import EngineError, NotFoundError
from engine.flows import SyncedFlow, check_flow_name, register_file, sync_directory
from engine.forms import FormError, validate_response
from engine.ids import new_id
from engine.worker import Worker
from store import values
from store.base import Store
from store.errors import StoreError
from store.events import Event
from store.model import ConnectorWrite, ExecutionRow, MessageRow, NewExecution, Status
from store.open import open_store

DEFAULT_DB = ".engine/engine.db"


def default_db_path() -> str:
    return os.environ.get("ENGINE_DB") or DEFAULT_DB


class Engine:
    """One database and the operations on it.

    Args:
        db_path: the database: a SQLite file path or ``sqlite:///PATH`` (created on first
            use); ``store.open.open_store`` refuses other schemes.
        synchronous: ``FULL`` (default: a committed event survives power loss) or
            ``NORMAL`` (faster; a power loss may lose the last commits, never corrupt).
    """

    def __init__(self, db_path: str | os.PathLike[str] | None = None, synchronous: str | None = None) -> None:
        self.synchronous = synchronous or os.environ.get("ENGINE_SYNCHRONOUS", "FULL")
        try:
            self.store: Store = open_store(str(db_path or default_db_path()), self.synchronous)
        except StoreError as exc:
            raise EngineError(str(exc)) from None

    def close(self) -> None:
        self.store.close()

    # -- flows -------------------------------------------------------------------

    def sync_flows(self, directory: str | Path, *, keep_projects: bool = False) -> list[SyncedFlow]:
        """Register every flow script in ``directory`` (see ``engine.flows.sync_directory``)."""
        return sync_directory(self.store, directory, keep_projects=keep_projects)

    def register_flow(self, name: str, source: str, project: str = "default") -> str:
        return self.store.put_flow(check_flow_name(name), source, project=project)

    def register_file(self, path: str | Path) -> SyncedFlow:
        return register_file(self.store, Path(path))

    # -- executions --------------------------------------------------------------

    def start(
        self, flow: str, inputs: dict[str, Any] | None = None, *, name: str | None = None, run: bool = True
    ) -> str:
        """Create a top-level execution of ``flow``; returns its id."""
        found = self.store.get_flow(flow)
        if found is None:
            known = ", ".join(f.name for f in self.store.list_flows()[:20]) or "none"
            raise NotFoundError(f"flow {flow!r} does not exist (known flows: {known}); register it with `engine flows sync DIR`")
        try:
            encoded = values.roundtrip(inputs or {})
        except values.UnrecordableValueError as exc:
            raise EngineError(f"inputs for flow {flow!r} cannot be recorded: {exc}") from None
        execution_id = new_id()
        self.store.create_execution(
            NewExecution(
                id=execution_id, flow=flow, flow_version=found.version, input_value=encoded,
                status=Status.QUEUED if run else Status.PAUSED, name=name, project=found.project,
            ),
            time.time(),
        )
        return execution_id

    def get(self, execution_id: str) -> ExecutionRow:
        """The execution with this id (or unique id prefix); EngineError if unknown."""
        row = self.store.get_execution(execution_id)
        if row is not None:
            return row
        matches = self.store.find_executions(execution_id) if execution_id else []
        found = self.store.get_execution(matches[0]) if len(matches) == 1 else None
        if found is not None:
            return found
        if len(matches) > 1:
            raise EngineError(f"execution id {execution_id!r} is ambiguous; type more of it")
        raise NotFoundError(f"no execution {execution_id!r} in {self.store.path}; `engine ls` lists them")

    def history(self, execution_id: str) -> list[Event]:
        return self.store.load_events(self.get(execution_id).id)

    # -- messages and connectors -----------------------------------------------------

    def respond(self, message_id: str, response: dict[str, Any]) -> dict[str, Any]:
        """Answer a message that waits for people; returns the checked answer.

        A wrong answer raises EngineError listing every problem; the execution keeps waiting.
        """
        message = self.store.get_message(message_id)
        if message is None:
            matches = [m for m in self.store.list_messages() if m.id.startswith(message_id)] if message_id else []
            if len(matches) != 1:
                raise NotFoundError(f"no message {message_id!r}; `engine messages ls` lists the open ones")
            message = matches[0]
        if message.status != "waiting":
            raise EngineError(f"message {message.id} ({message.subject!r}) is {message.status}, not waiting for an answer")
        try:
            answer = validate_response(message.form or [], response)
            values.encode(answer)
        except (FormError, values.UnrecordableValueError) as exc:
            raise EngineError(f"answer to message {message.id} ({message.subject!r}) refused: {exc}; the execution keeps waiting") from None
        try:
            self.store.answer_message(message.id, answer)
        except ValueError as exc:
            raise EngineError(str(exc)) from None
        return answer

    def save_connector(self, name: str, connector_type: str, value: dict[str, Any], description: str | None = None) -> None:
        """Store a connector; inline parameters of ``this.connect(name, ...)`` override its values."""
        try:
            get_connector(connector_type)
            values.encode(value)
        except ConnectorError as exc:
            raise EngineError(str(exc)) from None
        except values.UnrecordableValueError as exc:
            raise EngineError(f"connector {name!r} cannot be saved: {exc}") from None
        self.store.save_connector(ConnectorWrite(check_flow_name(name), connector_type.upper(), value, description))

    def worker(self, **options: Any) -> Worker:
        return Worker(self.store, **options)

    def run_until_ended(
        self, execution_id: str, *, on_message: Callable[[MessageRow], None] | None = None,
        worker: Worker | None = None, **worker_options: Any,
    ) -> ExecutionRow:
        """Run an embedded worker (``worker``, else a new one with ``worker_options``)
        until the execution ends (or halts, or the worker is stopped); returns its row.

        The worker does not wait for other executions it runs then: it hands them back.
        ``on_message`` is called once for each message of the execution that starts waiting
        for a person's answer, so a caller can say how to give it.
        """
        worker = worker or self.worker(**worker_options)
        seen: set[str] = set()

        def finished() -> bool:
            row = self.store.get_execution(execution_id)
            if row is not None and row.status == Status.WAITING and on_message is not None:
                for message in self.store.list_messages(status="waiting", execution_id=execution_id):
                    if message.id not in seen:
                        seen.add(message.id)
                        on_message(message)
            return row is None or row.ended or row.status == Status.HALTED

        try:
            worker.run(until=finished, max_store_failures=3)
        except StoreError as exc:
            raise EngineError(str(exc)) from None
        return self.get(execution_id)
