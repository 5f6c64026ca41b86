"""Replay-context commands on shared resources: other executions' fields, settings,
flows and execution queries. Every read is recorded, so a replay sees what the first
run saw."""

from __future__ import annotations

from typing import Any

from engine import arguments
from engine.commands.base import Commands
from flow_api.exceptions import InvalidInputError, ResourceNotFoundError
from flow_api.handles import revive
from store import values
from store.events import (
    ExecutionRead,
    ExecutionsQueried,
    FlowRead,
    SettingDeleted,
    SettingRead,
    SettingSaved,
)
from store.model import SettingWrite


class ResourceCommands(Commands):
    """``execution.get``, ``system.setting``, ``system.flow(...).exists`` and ``system.executions``."""

    def read_execution(self, execution_id: str, fields: tuple[str, ...]) -> dict[str, Any]:
        body = self.journal.next(ExecutionRead, execution_id)
        if body is None:
            got = self.live.execution_fields(execution_id, fields)
            if got is None:
                raise self.journal.fail("read", execution_id, ResourceNotFoundError(
                    f"execution {self.execution_id}: execution {execution_id} does not exist"
                ))
            body = self.journal.append(ExecutionRead(execution_id, got))
        recorded = body.fields
        missing = [f for f in fields if f not in recorded]
        if missing:
            raise InvalidInputError(f"unknown execution field(s) {', '.join(missing)}")
        return {f: revive(recorded[f], self.runtime) for f in fields}

    def setting_read(self, name: str) -> tuple[bool, Any, str | None]:
        body = self.journal.next(SettingRead, name)
        if body is None:
            found = self.live.setting(name)
            read = SettingRead(name, False) if found is None else SettingRead(name, True, found[0], found[1])
            body = self.journal.append(read)
        return body.exists, revive(body.value, self.runtime), body.description

    def setting_save(self, name: str, value: Any, description: str | None) -> None:
        call_args = [arguments.argument("value", value), arguments.argument("description", description)]
        if self.journal.next(SettingSaved, name, call_args) is None:
            try:
                encoded = values.roundtrip(value)
            except values.UnrecordableValueError as exc:
                raise self.journal.fail("setting_save", name, InvalidInputError(
                    f"execution {self.execution_id}: setting {name!r} cannot be saved: {exc}"
                )) from None
            self.journal.commit(SettingSaved(name, encoded, description, call_args), settings=[SettingWrite(name, encoded, description)])

    def setting_delete(self, name: str) -> None:
        if self.journal.next(SettingDeleted, name) is None:
            self.journal.commit(SettingDeleted(name), settings=[SettingWrite(name, delete=True)])

    def flow_read(self, name: str) -> bool:
        body = self.journal.next(FlowRead, name)
        if body is None:
            found = self.live.flow_version(name)
            body = self.journal.append(FlowRead(name, found is not None, found[0] if found else None))
        return body.exists

    def query_executions(self, filter_: Any) -> list[str]:
        body = self.journal.next(ExecutionsQueried)
        if body is None:
            try:
                ids = [i for i in self.live.query(filter_) if i != self.execution_id]  # never the caller
            except ValueError as exc:
                raise self.journal.fail("executions", "", InvalidInputError(f"bad executions filter: {exc}")) from None
            body = self.journal.append(ExecutionsQueried(values.roundtrip(filter_), ids))
        return list(body.ids)
