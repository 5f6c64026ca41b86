"""The one interface the engine and the CLI use to persist executions: ``Store``.

A backend (``store.sqlite.SqliteStore`` today) implements it; ``store.open.open_store``
picks the backend from the ``--db`` value. Above ``store/`` nothing names a backend or
speaks SQL: code declares ``Store`` and catches ``store.errors`` types.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from store.events import Event, ExecutionControlled
from store.model import (
    Commit,
    CommitResult,
    ConnectorWrite,
    ExecutionRow,
    FlowVersion,
    MessageRow,
    NewExecution,
    SettingWrite,
)


class Store(Protocol):
    """Executions, events, flows, settings, messages, connectors, waits and leases.

    Every write is one transaction; errors are ``store.errors.StoreError`` (cannot read or
    write the database), ``LeaseLostError`` (a commit fenced out), and for the control
    operations ``UnknownExecutionError`` / ``WrongStatusError``.
    """

    #: Where the data lives (a file path or a URL), for messages to the user.
    path: str

    def close(self) -> None:
        """Release connections and files."""

    def wait_for_change(self, timeout: float) -> bool:
        """Whether another connection committed since this thread last asked, waiting up to
        ``timeout`` seconds for one (0: just look). Raises ``DatabaseReplacedError`` when
        the database was replaced under this process."""

    # -- looking after the data -------------------------------------------------------

    def backup(self, target: str) -> None:
        """Copy the database to the new file ``target``, safe while workers run."""

    def check(self) -> list[str]:
        """One line per problem found in the database; empty when sound."""

    # -- flows ------------------------------------------------------------------------

    def put_flow(self, name: str, source: str, *, project: str = "default", path: str | None = None) -> str:
        """Register ``source`` as the current version of flow ``name``; returns the version hash."""

    def get_flow(self, name: str) -> FlowVersion | None:
        """The current version of flow ``name``, or None."""

    def get_flow_version(self, version: str) -> FlowVersion | None:
        """The flow version of hash ``version``, or None."""

    def list_flows(self) -> list[FlowVersion]:
        """The current version of every flow, by name."""

    def flow_versions(self, name: str) -> list[FlowVersion]:
        """Every version of flow ``name``, oldest first."""

    # -- executions and events: reads -------------------------------------------------

    def get_execution(self, execution_id: str) -> ExecutionRow | None:
        """The execution ``execution_id``, or None."""

    def find_executions(self, prefix: str) -> list[str]:
        """Up to two ids starting with ``prefix``."""

    def list_executions(
        self, *, status: str | None = None, flow: str | None = None, project: str | None = None,
        parent_id: str | None = None, since: float | None = None, limit: int | None = None,
    ) -> list[ExecutionRow]:
        """Executions matching every given filter, newest first."""

    def query_execution_ids(self, filter_: Any) -> list[str]:
        """Ids of executions matching a flow_api filter expression, oldest first."""

    def statuses(self, ids: Iterable[str]) -> dict[str, str]:
        """The status of each of ``ids`` that exists."""

    def children(self, execution_id: str) -> list[ExecutionRow]:
        """The children of ``execution_id``, oldest first."""

    def dependencies(self, execution_id: str) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """(what ``execution_id`` waited for, what waited for it), each as (id, since)."""

    def load_events(self, execution_id: str, after_seq: int = 0) -> list[Event]:
        """The execution's log in seq order (optionally only past ``after_seq``)."""

    def next_wake_at(self) -> float | None:
        """The earliest timer or lease expiry."""

    def has_pending_work(self) -> bool:
        """Anything queued, running, or waiting on a timer or deadline."""

    def count_by_status(self) -> dict[str, int]:
        """How many executions have each status."""

    def count_tree(self, root_id: str) -> int:
        """How many executions the tree of top-level execution ``root_id`` holds."""

    def waiting_on(self, waiter: str, targets: Sequence[str]) -> list[str]:
        """Those of ``targets`` that wait, directly or through others, for ``waiter``."""

    # -- settings, messages, connectors -----------------------------------------------

    def get_setting(self, name: str) -> tuple[Any, str | None] | None:
        """(value, description) of a setting, or None."""

    def list_settings(self) -> list[tuple[str, Any, str | None]]:
        """(name, value, description) of every setting, by name."""

    def save_setting(self, write: SettingWrite) -> None:
        """Write a setting outside any execution."""

    def get_message(self, message_id: str) -> MessageRow | None:
        """The message ``message_id``, or None."""

    def list_messages(self, *, status: str | None = None, execution_id: str | None = None) -> list[MessageRow]:
        """Messages matching every given filter."""

    def answer_message(self, message_id: str, response: Any) -> list[str]:
        """Record a person's answer; returns the execution it made runnable, if any."""

    def get_connector(self, name: str) -> ConnectorWrite | None:
        """The stored connector ``name``, or None."""

    def list_connectors(self) -> list[ConnectorWrite]:
        """Every stored connector."""

    def save_connector(self, write: ConnectorWrite) -> None:
        """Store a connector, replacing one of the same name."""

    # -- leases and commits -----------------------------------------------------------

    def claim(self, owner: str, limit: int, lease_seconds: float, now: float) -> list[tuple[str, int]]:
        """Lease up to ``limit`` runnable executions; returns (execution id, fence) pairs."""

    def renew_leases(self, leases: Sequence[tuple[str, int]], lease_seconds: float, now: float) -> list[str]:
        """Extend leases still held; returns the ids whose lease was lost."""

    def lease_held(self, execution_id: str, fence: int, now: float) -> bool:
        """Whether lease ``fence`` on the execution is current and not expired at ``now``."""

    def release_leases(self, leases: Sequence[tuple[str, int]], note: str | None = None) -> None:
        """Hand leased executions back (QUEUED); with ``note`` it counts as a failed attempt."""

    def create_execution(self, new: NewExecution, at: float) -> None:
        """Create a top-level execution (children are created through ``commit``)."""

    def commit(self, commit: Commit) -> CommitResult:
        """Apply one execution's decision atomically; raises ``LeaseLostError`` if fenced out."""

    # -- control by a user (each checks the status it acts on, in its transaction) --

    def start_execution(self, execution_id: str, now: float) -> str:
        """PAUSED -> QUEUED (or what ``pause`` interrupted); returns the new status."""

    def pause_execution(self, execution_id: str, now: float) -> tuple[str, str]:
        """Pause now, or request it of a RUNNING one; returns the status before and after."""

    def resume_execution(self, execution_id: str, flow_version: str | None, now: float) -> tuple[str, str]:
        """Continue a PAUSED or HALTED one; returns the status before and after."""

    def cancel_execution(self, execution_id: str, now: float) -> tuple[list[str], list[str]]:
        """Cancel it and its live descendants; returns (the cancelled, the waiters woken)."""

    def retry_execution(self, execution_id: str, flow_version: str, now: float) -> int:
        """A new attempt from the top on ``flow_version``; returns the attempt number."""

    def fork_execution(
        self, new: NewExecution, taken_over: list[Event], children: list[NewExecution],
        marker: ExecutionControlled, now: float,
    ) -> None:
        """Create the fork ``new`` with the history ``taken_over``, its ``children`` and ``marker``."""
