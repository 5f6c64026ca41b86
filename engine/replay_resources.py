"""Replay-context commands on shared resources: other executions' fields, settings,
flows and execution queries. Mixed into ``ReplayContext``; every read is recorded, so a
replay sees what the first run saw."""

from __future__ import annotations

from typing import Any, cast

from engine import arguments
from engine.replay_host import _Host
from flow_api.exceptions import InvalidInputError, ResourceNotFoundError
from flow_api.resources import revive
from flow_api.runtime import Runtime
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


class ResourceCommands(_Host):
    """``execution.get``, ``system.setting``, ``system.flow(...).exists`` and ``system.executions``."""

    def read_execution(self, execution_id: str, fields: tuple[str, ...]) -> dict[str, Any]:
        body = self._recorded("read", execution_id)
        if body is None:
            assert self.live is not None
            got = self.live.execution_fields(execution_id, fields)
            if got is None:
                raise self._fail("read", execution_id, ResourceNotFoundError(
                    f"execution {self.execution_id}: execution {execution_id} does not exist"
                ))
            body = self._append(ExecutionRead(execution_id, got)).body
        recorded = body.fields  # type: ignore[attr-defined]
        missing = [f for f in fields if f not in recorded]
        if missing:
            raise InvalidInputError(f"unknown execution field(s) {', '.join(missing)}")
        return {f: revive(recorded[f], cast(Runtime, self)) for f in fields}

    def setting_read(self, name: str) -> tuple[bool, Any, str | None]:
        body = self._recorded("setting_read", name)
        if body is None:
            assert self.live is not None
            found = self.live.setting(name)
            read = SettingRead(name, False) if found is None else SettingRead(name, True, found[0], found[1])
            body = self._append(read).body
        assert isinstance(body, SettingRead)
        return body.exists, revive(body.value, cast(Runtime, self)), body.description

    def setting_save(self, name: str, value: Any, description: str | None) -> None:
        call_args = [arguments.argument("value", value), arguments.argument("description", description)]
        if self._recorded("setting_save", name, call_args) is None:
            try:
                encoded = values.roundtrip(value)
            except values.UnrecordableValueError as exc:
                raise self._fail("setting_save", name, InvalidInputError(
                    f"execution {self.execution_id}: setting {name!r} cannot be saved: {exc}"
                )) from None
            self._commit(SettingSaved(name, encoded, description, call_args), settings=[SettingWrite(name, encoded, description)])

    def setting_delete(self, name: str) -> None:
        if self._recorded("setting_delete", name) is None:
            self._commit(SettingDeleted(name), settings=[SettingWrite(name, delete=True)])

    def flow_read(self, name: str) -> bool:
        body = self._recorded("flow_read", name)
        if body is None:
            assert self.live is not None
            found = self.live.flow_version(name)
            body = self._append(FlowRead(name, found is not None, found[0] if found else None)).body
        return body.exists  # type: ignore[attr-defined, no-any-return]

    def query_executions(self, filter_: Any) -> list[str]:
        body = self._recorded("executions")
        if body is None:
            assert self.live is not None
            try:
                ids = [i for i in self.live.query(filter_) if i != self.execution_id]  # never the caller
            except ValueError as exc:
                raise self._fail("executions", "", InvalidInputError(f"bad executions filter: {exc}")) from None
            body = self._append(ExecutionsQueried(values.roundtrip(filter_), ids)).body
        return list(body.ids)  # type: ignore[attr-defined]
