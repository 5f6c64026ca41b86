"""The worker: claims runnable executions under a lease, runs one activation each, and
commits the decision in one transaction.

Every activation, fresh, woken or recovered after a crash, comes in the same way: a
claim that sets a lease (owner, expiry, fencing counter). A worker that dies holds its
leases until they expire; then any worker claims those executions and replays them.

Wake-up: a commit that makes executions runnable (a child ended, a child was created)
notifies this process's worker at once. Other processes notice through SQLite's
``data_version`` probe, every ``poll_interval`` seconds (5 ms by default).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from engine.activation import run_handler
from engine.clock import Clock, system_clock
from engine.connections import run_connection
from engine.decision import Decision
from engine.errors import error_info
from engine.flows import FlowLoader, FlowLoadError
from engine.live import StoreLive
from engine.replay import ReplayContext
from store.events import Event, ExecutionEnded, replay_history
from store.model import Claim, Commit, CommitResult
from store.sqlite import DatabaseReplacedError, SqliteStore, StoreError
from store.writes import LeaseLostError

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 15.0
DEFAULT_POLL_INTERVAL = 0.005


class Worker:
    """Runs executions from ``store`` on up to ``concurrency`` threads."""

    def __init__(
        self,
        store: SqliteStore,
        *,
        concurrency: int = 16,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        clock: Clock = system_clock,
        loader: FlowLoader | None = None,
    ) -> None:
        self.store = store
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.clock = clock
        self.loader = loader or FlowLoader(store)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="activation")
        self._wakeup = threading.Condition()
        self._notified = True
        self._running: dict[str, int] = {}
        self._stop = threading.Event()
        self._stopping = False
        self._secrets: dict[str, dict[str, Any]] = {}

    # -- the loop ------------------------------------------------------------------

    def run(
        self, *, until: Callable[[], bool] | None = None, until_idle: bool = False, max_store_failures: int | None = None
    ) -> None:
        """Work until ``stop()``, until ``until()`` is true, or (``until_idle``) until
        nothing is left to run now or on a timer.

        When the database cannot be written (disk full, read-only file), the worker logs
        the reason and tries again with a growing pause (up to 5 s); after
        ``max_store_failures`` failures in a row it gives up and raises ``StoreError``.
        It raises ``DatabaseReplacedError`` at once when the database file was replaced
        or its -wal deleted.
        """
        failures = 0
        self._last_version = -1
        self._last_renew = self.clock()
        try:
            while not self._stop.is_set():
                if until is not None and until():
                    return
                try:
                    if self._tick(until_idle):
                        return
                    failures = 0
                except DatabaseReplacedError:
                    raise  # another file is there now: retrying would write to the old one
                except StoreError as exc:
                    failures += 1
                    if max_store_failures is not None and failures >= max_store_failures:
                        raise
                    pause = min(5.0, 0.1 * 2**failures)
                    log.error("%s (worker %s retries in %.1f s)", exc, self.owner, pause)
                    self._stop.wait(pause)
        finally:
            self._stopping = True
            self._pool.shutdown(wait=True)

    def _tick(self, until_idle: bool) -> bool:
        """Claim what can run, renew leases, wait for news; True when idle and asked to stop then."""
        version = self.store.data_version()
        now = self.clock()
        with self._wakeup:
            notified, self._notified = self._notified, False
            free = self.concurrency - len(self._running)
        if free > 0 and (notified or version != self._last_version or self._timer_due(now)):
            claimed = self.store.claim(self.owner, free, self.lease_seconds, now)
            self._last_version = version  # not before: a claim that failed (disk full) is tried again
            for execution_id, fence in claimed:
                self._start(execution_id, fence)
        if now - self._last_renew > self.lease_seconds / 3:
            self._renew(now)
            self._last_renew = now
        if until_idle and self._idle():
            return True
        with self._wakeup:
            if not self._notified:
                self._wakeup.wait(self.poll_interval)
        return False

    def _start(self, execution_id: str, fence: int) -> None:
        with self._wakeup:
            self._running[execution_id] = fence
        try:
            self._pool.submit(self._activate, execution_id, fence)
        except RuntimeError:  # shutting down: hand the execution back at once
            with self._wakeup:
                self._running.pop(execution_id, None)
            self.store.release_leases([(execution_id, fence)])

    def _claim_request(self) -> Claim | None:
        """Offer the free slots to the next commit, which leases what it makes runnable."""
        with self._wakeup:
            free = self.concurrency - len(self._running)
        return None if self._stopping or free <= 0 else Claim(self.owner, self.lease_seconds, free)

    def _committed(self, result: CommitResult) -> None:
        for execution_id, fence in result.claimed:
            self._start(execution_id, fence)
        if len(result.claimed) < len(result.runnable):
            self.notify()

    def stop(self) -> None:
        self._stop.set()
        self.notify()

    def notify(self, _ids: list[str] | None = None) -> None:
        """Something became runnable: look for work now."""
        with self._wakeup:
            self._notified = True
            self._wakeup.notify()

    def _timer_due(self, now: float) -> bool:
        due = self.store.next_wake_at()
        return due is not None and due <= now

    def _idle(self) -> bool:
        with self._wakeup:
            if self._running:
                return False
        return not self.store.has_pending_work()

    def _renew(self, now: float) -> None:
        with self._wakeup:
            leases = list(self._running.items())
        for lost in self.store.renew_leases(leases, self.lease_seconds, now):
            log.warning("worker %s lost the lease of execution %s", self.owner, lost)

    # -- one activation --------------------------------------------------------------

    def _activate(self, execution_id: str, fence: int) -> None:
        try:
            self._commit(execution_id, fence, self.activate(execution_id, fence))
        except LeaseLostError:
            log.info("execution %s: lease lost to another worker; dropped this activation", execution_id)
        except StoreError as exc:
            log.error("execution %s: %s", execution_id, exc)
        except Exception:
            log.exception("execution %s: internal error in the engine; it will be retried when its lease expires", execution_id)
        finally:
            self._release_slot(execution_id, fence)
            self.notify()

    def activate(self, execution_id: str, fence: int) -> Decision:
        """Replay and run the handler of a claimed execution; returns its decision."""
        row = self.store.get_execution(execution_id)
        if row is None:
            raise LeaseLostError(f"execution {execution_id} vanished")
        if row.fence != fence or row.status != "RUNNING" or (row.lease_expires or 0) <= self.clock():
            # claimed again, or the lease ran out while this waited for a thread: another worker may run it
            raise LeaseLostError(f"execution {execution_id}: the lease was lost before this activation began")
        if row.type == "CONNECTION":
            decision = run_connection(
                row, self.store.load_events(execution_id), self.clock, self._secrets.get(execution_id),
                self.store.get_connector,
            )
            if decision.kind == "end":  # kept in memory across its backoffs until then
                self._secrets.pop(execution_id, None)
            return decision
        events = self.store.load_events(execution_id)
        history = replay_history(events)  # the current attempt, without control markers
        try:
            flow = self.loader.load(row.flow_version)
        except FlowLoadError as exc:
            message = f"{exc}; fix the flow and start a new execution"
            ended = ExecutionEnded("ENDED_ERROR", message, {}, error_info(exc))
            return Decision("end", [Event(events[-1].seq + 1, self.clock(), ended)], status="ENDED_ERROR", message=message)
        live = StoreLive(
            self.store, self.clock, execution_id, fence, self._claim_request, self._committed, self._secrets
        )
        ctx = ReplayContext(row, history, module_globals=flow.module_globals, flow_file=flow.filename, live=live)
        ctx.next_seq = events[-1].seq + 1  # markers left out of the replay keep their seqs
        return run_handler(ctx, flow)

    def _commit(self, execution_id: str, fence: int, decision: Decision) -> None:
        if decision.kind == "aborted":
            return
        self._release_slot(execution_id, fence)  # free once committed: offer it to this commit's claim
        commit = Commit(
            execution_id, fence, events=decision.events, creates=decision.creates, release_lease=True,
            claim=self._claim_request(),
        )
        if decision.kind == "end":
            commit.status, commit.message, commit.output_value = decision.status, decision.message, decision.output_value
        elif decision.kind == "suspend":
            commit.status, commit.wake_at, commit.wait = "WAITING", decision.wake_at, decision.wait
            commit.wait_message = decision.message_id
        elif decision.kind == "halt":
            commit.status, commit.message = "HALTED", decision.message
            log.error("%s", decision.message)
        self._committed(self.store.commit(commit))

    def _release_slot(self, execution_id: str, fence: int) -> None:
        with self._wakeup:
            if self._running.get(execution_id) == fence:
                del self._running[execution_id]
