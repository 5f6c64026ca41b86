"""The store's error types, whatever the backend: what callers above ``store/`` catch."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be opened, read or written; the message says what to do."""


class DatabaseReplacedError(StoreError):
    """The database file or its -wal was replaced or deleted under this process: retrying
    cannot help, so a worker stops."""


class StoreClosedError(StoreError):
    """A write came after this process closed its store (it is shutting down): nothing of
    it was recorded, and the execution it was for runs again when its lease expires."""


class LeaseLostError(Exception):
    """Another worker claimed this execution since this one did: its commit is refused."""


class UnknownExecutionError(ValueError):
    """No execution has this id (a ``ValueError``, so only this transaction's unit is undone)."""


class WrongStatusError(ValueError):
    """The execution's status does not allow the control operation (a ``ValueError``, so
    only this transaction's unit is undone); the engine words the message."""

    def __init__(self, execution_id: str, status: str) -> None:
        super().__init__(f"execution {execution_id} is {status}")
        self.execution_id = execution_id
        self.status = status
