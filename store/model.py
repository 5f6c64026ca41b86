"""Plain data the store reads and writes: execution rows and the units of a commit."""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any

import msgspec

from store.events import Event


class Status(StrEnum):
    """The statuses an execution can have; each is its own name, as stored and shown.
    ``HALTED`` is ours: the code diverged from the recorded history; the log is intact
    and ``engine resume`` continues once it is fixed."""

    PAUSED = "PAUSED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    WAITING = "WAITING"
    HALTED = "HALTED"
    ENDED_SUCCESS = "ENDED_SUCCESS"
    ENDED_ERROR = "ENDED_ERROR"
    ENDED_CANCELLED = "ENDED_CANCELLED"


ENDED_SUCCESS = Status.ENDED_SUCCESS
ENDED_ERROR = Status.ENDED_ERROR
ENDED_CANCELLED = Status.ENDED_CANCELLED
ENDED_STATUSES = frozenset({ENDED_SUCCESS, ENDED_ERROR, ENDED_CANCELLED})
FAILED_STATUSES = frozenset({ENDED_ERROR, ENDED_CANCELLED})
STATUSES = tuple(Status)

UNSET: Any = msgspec.UNSET


class ExecutionRow(msgspec.Struct, frozen=True):
    """One execution as stored. ``input_value``/``output_value`` are decoded values."""

    id: str
    type: str
    flow: str
    flow_version: str
    name: str | None
    status: str
    message: str | None
    parent_id: str | None
    root_id: str
    depth: int
    project: str
    input_value: Any
    output_value: Any
    created_at: float
    started_at: float | None
    ended_at: float | None
    wake_at: float | None
    lease_owner: str | None
    lease_expires: float | None
    fence: int
    last_seq: int
    attempts: int = 0  # activations claimed since the last decision
    attempt_log: str | None = None  # notes on those that did not decide, one per line

    @property
    def ended(self) -> bool:
        return self.status in ENDED_STATUSES


def source_version(source: str) -> str:
    """A flow version: the SHA-256 of its source (versions are content-addressed)."""
    return hashlib.sha256(source.encode()).hexdigest()


class FlowVersion(msgspec.Struct, frozen=True):
    name: str
    version: str
    source: str
    path: str | None
    project: str
    created_at: float


class NewExecution(msgspec.Struct, frozen=True):
    """An execution to create; its ``ExecutionStarted`` event is written with it."""

    id: str
    flow: str
    flow_version: str
    input_value: Any
    status: str = Status.QUEUED
    type: str = "FLOW"
    name: str | None = None
    parent_id: str | None = None
    root_id: str | None = None
    depth: int = 0
    project: str = "default"
    created_at: float | None = None  # when its creation was decided (default: the commit's time)


class WaitSpec(msgspec.Struct, frozen=True):
    """Suspend until ``needed`` of ``targets`` have ended, or one failed when
    ``wake_on_failure``; ``deadline`` (epoch seconds) wakes it regardless."""

    targets: list[str]
    needed: int
    wake_on_failure: bool
    deadline: float | None = None


class SettingWrite(msgspec.Struct, frozen=True):
    name: str
    value: Any = None
    description: str | None = None
    delete: bool = False


class NewMessage(msgspec.Struct, frozen=True):
    id: str
    seq: int
    subject: str
    message: str
    form: Any = None
    wait: bool = False
    deadline: float | None = None


class MessageRow(msgspec.Struct, frozen=True):
    id: str
    execution_id: str
    seq: int
    subject: str
    message: str
    form: Any
    wait: bool
    deadline: float | None
    status: str
    response: Any
    created_at: float
    answered_at: float | None


class ConnectorWrite(msgspec.Struct, frozen=True):
    name: str
    connector_type: str
    value: dict[str, Any]
    description: str | None = None


class Claim(msgspec.Struct, frozen=True):
    """Lease what a commit makes runnable to the committing worker in the same
    transaction (up to ``limit``), saving the wake-up a separate claim would cost; a
    commit that releases the lease (its activation is over) also leases queued
    executions up to ``limit``, saving the separate claim transaction."""

    owner: str
    lease_seconds: float
    limit: int


class Commit(msgspec.Struct):
    """Everything one decision of one execution changes, applied in one transaction.

    ``fence`` is the lease fencing counter the writer holds; the commit is refused
    (``LeaseLostError``) when another worker has claimed the execution since.
    """

    execution_id: str
    fence: int | None
    events: list[Event] = []
    status: str | None = None
    message: str | None = None
    output_value: Any = UNSET
    wake_at: float | None = None
    wait: WaitSpec | None = None
    wait_message: str | None = None
    creates: list[NewExecution] = []
    start: list[str] = []
    cancel: list[str] = []
    settings: list[SettingWrite] = []
    messages: list[NewMessage] = []
    connectors: list[ConnectorWrite] = []
    relocate: dict[str, str] = {}  # execution id -> project (``run(location_inheritance=...)``)
    release_lease: bool = False
    claim: Claim | None = None


class CommitResult(msgspec.Struct):
    """Executions this commit made runnable (so an in-process worker can start them now),
    and those of them it leased to the committer as (id, fence); for a fenced commit, when
    the committer's lease expires (as the commit found it: held until then)."""

    runnable: list[str] = []
    claimed: list[tuple[str, int]] = []
    status: str | None = None
    lease_expires: float | None = None
