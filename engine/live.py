"""The live backend of a replay context: commands past the end of the log run here,
against the store, under the activation's lease."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from engine.clock import Clock
from engine.decision import ActivationAborted
from store.base import Store
from store.errors import LeaseLostError, StoreError
from store.events import Event
from store.model import Claim, Commit, CommitResult, ConnectorWrite, MessageRow, Status

log = logging.getLogger(__name__)

#: Effects of a commit that can make executions runnable (``Commit.claim`` leases them).
_MAY_MAKE_RUNNABLE = frozenset({"creates", "start", "cancel"})

#: ``check_lease`` trusts what this activation's last commit found (lease held, execution
#: RUNNING) for this many seconds after it, instead of asking the store again: about as
#: stale as the worker's own look for cancelled executions (``worker.LEASE_CHECK_EVERY``).
TRUSTED_FOR = 0.05

#: ... and only while the lease that commit found runs for this many seconds more, so
#: that no other worker can have claimed it meanwhile, even with clocks a little apart.
LEASE_MARGIN = 1.0

_FIELDS = ("input_value", "output_value", "status", "message", "name", "flow", "id", "parent_id",
           "project", "created_at", "ended_at", "type")


class StoreLive:
    """Runs commands for execution ``execution_id`` holding lease ``fence``."""

    def __init__(
        self, store: Store, clock: Clock, execution_id: str, fence: int,
        claim: Callable[[], Claim | None], committed: Callable[[CommitResult, list[Event]], None],
        secrets: dict[str, dict[str, Any]] | None = None,
        shield: Callable[[], AbstractContextManager[None]] = nullcontext,
    ) -> None:
        self.store = store
        self.now = clock
        self.execution_id = execution_id
        self.fence = fence
        self.claim = claim
        self.committed = committed
        self.secrets = secrets if secrets is not None else {}
        self.shield = shield  # keeps an interrupt of the handler out of the write
        self._verified_at = -math.inf  # when the last commit of this activation was sent
        self._held_until = -math.inf  # the lease's expiry that commit found

    def commit(self, events: list[Event], **effects: Any) -> None:
        # only a commit that creates, starts or cancels executions can make one runnable to claim
        claim = None if _MAY_MAKE_RUNNABLE.isdisjoint(effects) else self.claim()
        commit = Commit(self.execution_id, self.fence, events=events, claim=claim, **effects)
        sent = self.now()
        try:
            with self.shield():
                result = self.store.commit(commit)
        except LeaseLostError as exc:
            raise ActivationAborted(str(exc)) from None
        except StoreError as exc:  # not the flow's business: stop, and run again from the log later
            log.error("%s Execution %s runs again from its log when its lease expires.", exc, self.execution_id)
            raise ActivationAborted(str(exc)) from None
        self.lease_seen(sent, result.lease_expires)
        self.committed(result, events)
        if result.status == Status.PAUSED:  # `engine pause` took effect at this commit
            raise ActivationAborted(f"execution {self.execution_id} was paused")

    def lease_seen(self, at: float, expires: float | None) -> None:
        """The store answered at ``at`` (or later) that this activation holds the lease,
        running until ``expires``: a commit's answer, or the row its activation read."""
        if expires is not None:
            self._verified_at, self._held_until = at, expires

    def check_lease(self) -> None:
        """Stop the activation unless this worker still holds the lease: a step body about
        to run must not run while another worker may run it too (a long wait for the
        write lock can outlast a lease). Right after a commit of this activation found the
        lease held (see ``TRUSTED_FOR``), that answer stands without asking the store again."""
        now = self.now()
        if now - self._verified_at < TRUSTED_FOR and self._held_until - now > LEASE_MARGIN:
            return
        if not self.store.lease_held(self.execution_id, self.fence, now):
            log.warning("execution %s: the lease ran out or was taken over before a step body could run; "
                        "this activation stops and the execution runs again from its log", self.execution_id)
            raise ActivationAborted(f"execution {self.execution_id}: lease {self.fence} lost before a step body ran")

    def flow_version(self, flow: str) -> tuple[str, str] | None:
        found = self.store.get_flow(flow)
        return None if found is None else (found.version, found.project)

    def statuses(self, ids: list[str]) -> dict[str, str]:
        return self.store.statuses(ids)

    def execution_fields(self, execution_id: str, fields: tuple[str, ...]) -> dict[str, Any] | None:
        row = self.store.get_execution(execution_id)
        if row is None:
            return None
        return {f: getattr(row, f) for f in fields if f in _FIELDS}

    def execution_summary(self, execution_id: str) -> str:
        row = self.store.get_execution(execution_id)
        if row is None:
            return f"execution {execution_id} does not exist"
        return f"execution {row.id} (flow {row.flow!r}) ended {row.status}: {row.message or 'no message'}"

    def setting(self, name: str) -> tuple[Any, str | None] | None:
        return self.store.get_setting(name)

    def query(self, filter_: Any) -> list[str]:
        return self.store.query_execution_ids(filter_)

    def waiting_on(self, waiter: str, targets: list[str]) -> list[str]:
        return self.store.waiting_on(waiter, targets)

    def tree_size(self, root_id: str) -> int:
        return self.store.count_tree(root_id)

    def message_state(self, message_id: str) -> MessageRow | None:
        return self.store.get_message(message_id)

    def connector(self, name: str) -> ConnectorWrite | None:
        return self.store.get_connector(name)

    def remember_params(self, connection_id: str, params: dict[str, Any]) -> None:
        """Keep inline secrets in this process only, for the worker that runs the connection."""
        self.secrets[connection_id] = params
