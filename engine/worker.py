"""The worker: claims runnable executions under a lease, runs one activation each, and
commits the decision in one transaction.

Every activation, fresh, woken or recovered after a crash, comes in the same way: a
claim that sets a lease (owner, expiry, fencing counter). A worker that dies holds its
leases until they expire; then any worker claims those executions and replays them.

Wake-up: a commit that makes executions runnable (a child ended, a child was created)
notifies this process's worker at once; other processes' commits through
``engine.change_listener`` (``version`` counts the changes seen). An idle worker sleeps
until then, or until its next timer, lease expiry or schedule, at most ``poll_interval``
(1 s by default, the safety net).

Poison: an execution claimed again after ``max_attempts`` activations died without a
decision is ended (``engine.attempts``); one whose last activation died runs alone,
so that it cannot take others down with it. Limits: an activation that runs past its
time limit, or whose execution was cancelled, is interrupted at its next line
(``engine.activity``, ``engine.interrupts``).

Schedules: each tick past the time ``engine.schedules.fire_due`` named, the worker fires
the due slots of every schedule (at most every 0.5 s, and at each next slot); the git
syncs of the slots it takes run in a thread of their own (``engine.git_actions``).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from engine import attempts, git_actions, schedules, warm
from engine.activation import run_handler
from engine.activity import ABANDONED, CANCELLED, DEFAULT_ACTIVATION_TIMEOUT, TIMEOUT, Activation
from engine.change_listener import ChangeListener
from engine.clock import Clock, system_clock
from engine.connection_runner import run_connection
from engine.decision import Decision, commit_of, ended_after, ended_in_error
from engine.errors import error_info, text_of
from engine.flows import FlowLoader, FlowLoadError
from engine.interrupts import ActivationInterrupted, Interrupts
from engine.live import StoreLive
from engine.observer import WorkerObserver
from engine.replay import ReplayContext
from engine.warm import Run, WarmCache
from store.base import Store
from store.errors import DatabaseReplacedError, LeaseLostError, StoreClosedError, StoreError
from store.events import ErrorInfo, Event, replay_history
from store.model import Claim, CommitResult, Status

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 15.0
DEFAULT_POLL_INTERVAL = 1.0

#: Seconds between checks that the executions this worker runs were not cancelled.
LEASE_CHECK_EVERY = 0.05

#: The shortest sleep of an idle loop: a timer already due that another worker claimed is not looked for again sooner.
TIMER_SLACK = 0.001

#: How long a stopping worker waits for abandoned activations to unwind.
ABANDON_GRACE = 2.0


class Worker:
    """Runs executions from ``store`` on up to ``concurrency`` threads."""

    def __init__(
        self,
        store: Store,
        *,
        concurrency: int = 16,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        clock: Clock = system_clock,
        loader: FlowLoader | None = None,
        max_attempts: int = attempts.DEFAULT_MAX_ATTEMPTS,
        activation_timeout: float = DEFAULT_ACTIVATION_TIMEOUT,
        observer: WorkerObserver | None = None,
        warm_cache: int | None = None,
    ) -> None:
        if concurrency < 1 or not activation_timeout > 0:
            raise ValueError("a worker needs concurrency >= 1 and activation_timeout > 0")
        self.store = store
        self.concurrency = concurrency
        self.max_attempts = attempts.check_max_attempts(max_attempts)
        self.activation_timeout = activation_timeout
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.clock = clock
        self.loader = loader or FlowLoader(store)
        self.observer = observer
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        #: Handlers parked at their wait (``engine.warm``); at most ``concurrency`` activations run at once.
        self.warm_cache = WarmCache(warm.size_from_env() if warm_cache is None else warm_cache)
        self._pool = ThreadPoolExecutor(max_workers=concurrency + self.warm_cache.size, thread_name_prefix="activation")
        self._carriers = threading.Semaphore(concurrency)
        self._wakeup = threading.Condition()
        self._notified = True
        self._listener = ChangeListener(store, poll_interval, self._wakeup)
        self._running: dict[str, Activation] = {}
        self._suspect: str | None = None  # an execution whose last activation died: it runs alone
        self._interrupts = Interrupts()
        self._stop = threading.Event()
        self._stopping = False
        self._abandon = False
        self._to_hand_back: list[tuple[str, int]] = []
        self._secrets: dict[str, dict[str, Any]] = {}
        self._schedules_at = 0.0  # when to look for due schedules next (engine.schedules)
        self._git_syncs = git_actions.SlotSyncs(store)

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
        Returning because ``until()`` became true, or after ``stop(abandon=True)``, the
        worker does not wait for its other activations: it hands their executions back
        (QUEUED, for any worker) and interrupts their handlers.
        """
        failures = 0
        self._last_version = self._checked_version = -1
        self._last_renew = self._last_lease_check = self.clock()
        try:
            while not self._stop.is_set():
                if until is not None and until():
                    self._abandon = True
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
            self.warm_cache.discard(self.warm_cache.ids())
            self._git_syncs.close(ABANDON_GRACE)
            self._listener.stop()
            if self._abandon:
                self._abandon_all()
            else:
                self._pool.shutdown(wait=True)

    def _abandon_all(self) -> None:
        """Hand back every execution still running here and interrupt its handler."""
        with self._wakeup:
            running = list(self._running.values())
            for act in running:
                act.stop = ABANDONED
        self._pool.shutdown(wait=False)  # one not started yet finds its lease gone
        try:
            self.store.release_leases([(act.execution_id, act.fence) for act in running])
        except StoreError as exc:
            log.error("%s (the executions worker %s ran run again when their leases expire)", exc, self.owner)
        for act in running:
            act.watch(self._interrupts, self.clock())
        with self._wakeup:
            self._wakeup.wait_for(lambda: not self._running, ABANDON_GRACE)

    def busy(self) -> bool:
        """Whether a handler still runs here (one stuck in C code after ``run`` returned)."""
        with self._wakeup:
            return bool(self._running)

    def _tick(self, until_idle: bool) -> bool:
        """Claim what can run, renew leases, wait for news; True when idle and asked to stop then."""
        self._listener.ensure_running()
        with self._wakeup:
            error = self._listener.take_error()
            version = self._listener.changes
        if error is not None:
            raise error
        now = self.clock()
        with self._wakeup:
            hand_back, self._to_hand_back = self._to_hand_back, []
        if hand_back:
            try:
                self.store.release_leases(hand_back)
            except StoreError:
                with self._wakeup:
                    self._to_hand_back[:0] = hand_back
                raise
        if now >= self._schedules_at:
            fired, self._schedules_at = schedules.fire_due(self.store, now, self._git_syncs.submit)
            if fired:
                self.notify()
        with self._wakeup:
            notified, self._notified = self._notified, False
            free = self._free()
        due = self.store.next_wake_at()
        if free > 0 and (notified or version != self._last_version or (due is not None and due <= now)):
            claimed = self.store.claim(self.owner, free, self.lease_seconds, now)
            self._last_version = version  # not before: a claim that failed (disk full) is tried again
            for execution_id, fence in claimed:
                self._start(execution_id, fence)
        self._watch(now, version)
        self.warm_cache.sweep(self.store.statuses, now)
        if now - self._last_renew > self.lease_seconds / 3:
            self._renew(now)
            self._last_renew = now
        if until_idle and self._idle():
            return True
        with self._wakeup:
            self._wakeup.wait_for(
                lambda: self._notified or self._listener.changes != version or self._listener.error is not None,
                self._sleep_for(now, due),
            )
        return False

    def _sleep_for(self, now: float, due: float | None) -> float:
        """How long the loop sleeps unless woken: briefly while activations run (their
        time limits and cancellation are watched), else until the next timer, lease
        expiry or schedule, at most ``poll_interval``; hold the lock."""
        if self._running:
            return min(self.poll_interval, LEASE_CHECK_EVERY)
        until = min(self._schedules_at, due if due is not None else self._schedules_at) - now
        return max(TIMER_SLACK, min(self.poll_interval, until))

    def _free(self) -> int:
        """Slots free for new claims (none while an execution runs alone); hold the lock."""
        return 0 if self._suspect else self.concurrency - len(self._running)

    def _watch(self, now: float, version: int) -> None:
        """Stop activations past their time limit, or whose execution was cancelled
        (looked for when another connection committed, at most every LEASE_CHECK_EVERY s)."""
        with self._wakeup:
            running = list(self._running.values())
        if running and version != self._checked_version and now - self._last_lease_check >= LEASE_CHECK_EVERY:
            self._checked_version, self._last_lease_check = version, now
            statuses = self.store.statuses(act.execution_id for act in running)
            for act in running:
                if act.stop is None and statuses.get(act.execution_id) != Status.RUNNING:
                    act.stop = CANCELLED
        for act in running:
            act.watch(self._interrupts, now)

    def _start(self, execution_id: str, fence: int) -> None:
        parked = None if self._stopping else self.warm_cache.take(execution_id)
        with self._wakeup:
            self._running[execution_id] = Activation(execution_id, fence, self.clock(), self.activation_timeout)
        if parked is not None:  # its own thread goes on, or replays if the execution changed meanwhile
            parked.wake(fence)
            return
        try:
            self._pool.submit(self._activate, execution_id, fence)
        except RuntimeError:  # shutting down: hand the execution back at once
            with self._wakeup:
                self._running.pop(execution_id, None)
            self.store.release_leases([(execution_id, fence)])

    def _claim_request(self) -> Claim | None:
        """Offer the free slots to the next commit, which leases what it makes runnable."""
        with self._wakeup:
            free = self._free()
        return None if self._stopping or free <= 0 else Claim(self.owner, self.lease_seconds, free)

    def _committed(self, result: CommitResult, events: list[Event]) -> None:
        if self.observer is not None:
            self.observer.committed(events)
        for execution_id, fence in result.claimed:
            self._start(execution_id, fence)
        if len(result.claimed) < len(result.runnable):
            self.notify()

    def stop(self, *, abandon: bool = False) -> None:
        """Stop claiming; ``run`` returns once the activations in flight have decided,
        or at once with ``abandon`` (their executions are handed back)."""
        self._abandon = self._abandon or abandon
        self._stop.set()
        self.notify()

    def notify(self, _ids: list[str] | None = None) -> None:
        """Something became runnable: look for work now."""
        with self._wakeup:
            self._notified = True
            self._wakeup.notify()

    def _idle(self) -> bool:
        with self._wakeup:
            if self._running:
                return False
        return not self.store.has_pending_work()

    def _renew(self, now: float) -> None:
        with self._wakeup:
            running = dict(self._running)
        leases = [(eid, act.fence) for eid, act in running.items()]
        for lost in self.store.renew_leases(leases, self.lease_seconds, now):
            log.warning("worker %s lost the lease of execution %s", self.owner, lost)
            if running[lost].stop is None:
                running[lost].stop = CANCELLED

    # -- one activation --------------------------------------------------------------

    def _activate(self, execution_id: str, fence: int) -> None:
        run: Run | None = Run(execution_id, fence)
        with self._carriers:
            while run is not None:  # again when a handler parked here woke stale: replay it
                self._activate_once(run)
                run = None if run.replay_fence is None else Run(execution_id, run.replay_fence)

    def _activate_once(self, run: Run) -> None:
        execution_id, began = run.execution_id, self.clock()
        try:
            try:
                with self._interrupts.running(execution_id):
                    decision = self.activate(execution_id, run.fence, run)
            except ActivationInterrupted:  # came outside the handler (loading it, or as it returned)
                decision = Decision("interrupted")
            fence = run.fence
            if run.failure is not None:  # committing as the handler parked failed: handled as below
                raise run.failure
            if run.settled:  # its handler parked, and was discarded since: nothing left to commit
                return
            if decision.kind == "interrupted":
                self._stopped(execution_id, fence, decision)
            else:
                self._commit(execution_id, fence, decision)
                if self.observer is not None:
                    self.observer.decided(decision, self.clock() - began)
        except LeaseLostError:
            log.info("execution %s: lease lost to another worker; dropped this activation", execution_id)
        except StoreClosedError:  # this process is stopping: the lease expires, another worker goes on
            log.info("execution %s: the store closed before this activation committed; it runs again", execution_id)
        except StoreError as exc:
            log.error("execution %s: %s", execution_id, exc)
            self._hand_back(execution_id, run.fence)
        except BaseException as exc:  # an engine bug, or something that got past the handler's error handling
            self._failed(execution_id, run.fence, exc)
        finally:
            self._release_slot(execution_id, run.fence)
            self.notify()

    def _failed(self, execution_id: str, fence: int, exc: BaseException) -> None:
        """Hand the execution back with a note: the attempt counts towards ``max_attempts``."""
        what = f"failed: {type(exc).__name__}: {text_of(exc)} escaped the engine's error handling"
        log.error("execution %s: %s", execution_id, what, exc_info=not isinstance(exc, (SystemExit, KeyboardInterrupt)))
        try:
            row = self.store.get_execution(execution_id)
            if row is not None and row.fence == fence and row.status == Status.RUNNING:
                self.store.release_leases([(execution_id, fence)], note=attempts.note(row, self.owner, what))
        except StoreError as failure:  # its lease expires instead; the next claim counts the attempt
            log.error("execution %s: %s", execution_id, failure)

    def _stopped(self, execution_id: str, fence: int, decision: Decision) -> None:
        """The worker interrupted the activation: past its time limit it ends ENDED_ERROR
        (with what it recorded before); cancelled or abandoned it just stops."""
        with self._wakeup:
            act = self._running.get(execution_id)
        if act is None or act.stop != TIMEOUT:
            return
        message = act.time_limit_message(decision.line)
        info = ErrorInfo("EngineException", message)
        row = self.store.get_execution(execution_id)
        if row is None:
            return
        seq = decision.events[-1].seq + 1 if decision.events else row.last_seq + 1
        end = ended_in_error(seq, self.clock(), message, info, decision.output_value or {}, before=decision)
        try:
            self._commit(execution_id, fence, end)
        except LeaseLostError:  # interrupted inside the engine's bookkeeping: record the end alone
            row = self.store.get_execution(execution_id)
            if row is not None and row.fence == fence and row.status == Status.RUNNING:
                self._commit(execution_id, fence, ended_after(row, self.clock(), message, info))

    def _alone(self, execution_id: str, fence: int) -> bool:
        """Run this execution alone: its last activation died, perhaps taking its worker
        process with it. Waits until no other activation runs here, starting none
        meanwhile; False (its lease handed back, uncounted) if another one runs alone."""
        with self._wakeup:
            if self._suspect is None:
                self._suspect = execution_id
                while len(self._running) > 1:
                    self._wakeup.wait(0.05)
                act = self._running.get(execution_id)
                if act is not None:
                    act.started = self.clock()
                return True
        with self._interrupts.shielded():  # an interrupt landing in a write it leads would fail its batch-mates' too
            self.store.release_leases([(execution_id, fence)])
        return False

    def activate(self, execution_id: str, fence: int, run: Run | None = None) -> Decision:
        """Replay and run the handler of a claimed execution; returns its decision. With
        ``run``, the handler may park at its waits and go on in this call (``engine.warm``)."""
        read_at = self.clock()
        row = self.store.get_execution(execution_id)
        if row is None:
            raise LeaseLostError(f"execution {execution_id} vanished")
        if row.fence != fence or row.status != Status.RUNNING or (row.lease_expires or 0) <= self.clock():
            # claimed again, or the lease ran out while this waited for a thread: another worker may run it
            raise LeaseLostError(f"execution {execution_id}: the lease was lost before this activation began")
        if self.observer is not None:
            self.observer.claimed(row, self.clock())
        if row.attempts > self.max_attempts:
            message = attempts.gave_up_message(row, self.max_attempts)
            log.error("%s", message)
            return ended_after(row, self.clock(), message, ErrorInfo("EngineException", message))
        if row.attempts > 1 and not self._alone(execution_id, fence):
            return Decision("aborted")
        with self._wakeup:
            act = self._running.get(execution_id)
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
            if act is not None:
                act.limit_from_flow(flow.module_globals, row.flow)
        except FlowLoadError as exc:
            message = f"{exc}; fix the flow and start a new execution"
            return ended_after(row, self.clock(), message, error_info(exc))
        except ValueError as exc:
            return ended_after(row, self.clock(), str(exc), error_info(exc))
        live = StoreLive(
            self.store, self.clock, execution_id, fence, self._claim_request, self._committed, self._secrets,
            self._interrupts.shielded,
        )
        live.lease_seen(read_at, row.lease_expires)  # checked above: a first step body need not ask again
        ctx = ReplayContext(row, history, module_globals=flow.module_globals, flow_file=flow.filename, live=live)
        ctx.journal.next_seq = events[-1].seq + 1  # markers left out of the replay keep their seqs
        if run is not None and self.warm_cache.size:  # dict.get: atomic, no lock needed
            resume = functools.partial(warm.resume, self.store, self.clock, self.observer, self._running.get,
                                       ctx=ctx, live=live, flow=flow)
            ctx.journal.park = functools.partial(warm.park, self.warm_cache, run, ctx, interrupts=self._interrupts,
                                                 carriers=self._carriers, commit=self._commit_parked, resume=resume)
        return run_handler(ctx, flow)

    def _commit_parked(self, run: Run, decision: Decision) -> bool:
        """Commit a parked handler's suspension; False if that failed (``run.failure`` says why)."""
        try:
            self._commit(run.execution_id, run.fence, decision)
        except BaseException as exc:
            run.failure = exc
            return False
        if self.observer is not None:
            self.observer.decided(decision, 0.0)
        self.notify()  # its slot is free (``_commit``): look for work
        return True

    def _hand_back(self, execution_id: str, fence: int) -> None:
        """The database failed this activation (disk full, read-only): not the flow's
        doing, so its lease goes back uncounted, as soon as the database takes writes."""
        with self._wakeup:
            self._to_hand_back.append((execution_id, fence))

    def _commit(self, execution_id: str, fence: int, decision: Decision) -> None:
        if decision.kind == "aborted":
            row = self.store.get_execution(execution_id)
            if row is not None and row.fence == fence and row.status == Status.RUNNING:  # a write failed, lease still held
                self._hand_back(execution_id, fence)
            return
        self._release_slot(execution_id, fence)  # free once committed: offer it to this commit's claim
        if decision.kind == "halt":
            log.error("%s", decision.message)
        commit = commit_of(decision, execution_id, fence, self._claim_request())
        self._committed(self.store.commit(commit), commit.events)

    def _release_slot(self, execution_id: str, fence: int) -> None:
        with self._wakeup:
            act = self._running.get(execution_id)
            if act is not None and act.fence == fence:
                del self._running[execution_id]
                if execution_id == self._suspect:
                    self._suspect = None
                self._wakeup.notify_all()
