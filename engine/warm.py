"""The warm cache: handlers parked in memory at their wait, so that a wake-up in the
same process goes on from there instead of replaying the log.

When a handler must wait (children, a timer, a message), a worker with a warm cache
commits the suspension from the handler's own thread and keeps that thread blocked at
the wait (``park``). When this worker claims the execution again, the parked handler
goes on, but only if nothing happened meanwhile: the claim's fence must be the one right
after the fence the suspension was committed under (no other worker claimed it, no pause
or cancel bumped it), and the log must still end at the seq the handler left (no retry,
fork, resume or cancel marker was added). Otherwise the handler is discarded and the
execution replays from its log, as it does without the cache: replay stays the
reference, the cache only saves it.

Discarding raises the suspension in the parked thread, the way a handler always unwinds
at a wait; the journal refuses any further call, so nothing is recorded. The cache holds
at most ``size`` handlers (the least recently parked one is discarded first), and a
handler whose history is longer than ``MAX_PARKED_EVENTS`` is not parked. It is off with
``ENGINE_WARM_CACHE=0`` or ``engine worker --no-warm-cache``.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

from engine.activation import suspend_decision
from engine.activity import Activation
from engine.clock import Clock
from engine.decision import Decision, Suspended
from engine.errors import EngineError
from engine.flows import LoadedFlow
from engine.interrupts import Interrupts
from engine.live import StoreLive
from engine.observer import WorkerObserver
from engine.replay import ReplayContext
from store.base import Store
from store.errors import StoreError
from store.model import ExecutionRow, Status

#: The environment variable that sets the cache size (0: off).
ENV = "ENGINE_WARM_CACHE"

#: Handlers a worker keeps parked by default.
DEFAULT_SIZE = 64

#: A handler with a longer history is not parked (its memory is not worth a replay).
MAX_PARKED_EVENTS = 10_000

#: Seconds between looks for parked handlers whose execution ended or paused meanwhile.
SWEEP_EVERY = 1.0


def size_from_env(environ: Mapping[str, str] = os.environ) -> int:
    """The cache size ``ENGINE_WARM_CACHE`` asks for (unset: ``DEFAULT_SIZE``)."""
    value = environ.get(ENV, "").strip()
    if not value:
        return DEFAULT_SIZE
    try:
        size = int(value)
    except ValueError:
        size = -1
    if size < 0:
        raise EngineError(f"{ENV}={value!r} is not a number of handlers to keep parked; set it to 0 (off) or a positive integer")
    return size


class Run:
    """One thread's activation of one execution: the lease it holds now, and what is
    left to do when its handler returns (a parked handler went through several)."""

    __slots__ = ("execution_id", "failure", "fence", "next", "replay_fence", "settled")

    def __init__(self, execution_id: str, fence: int) -> None:
        self.execution_id = execution_id
        self.fence = fence
        self.settled = False  # its decision is committed (or failed): nothing is left to commit
        self.failure: BaseException | None = None  # why committing the parked suspension failed
        self.replay_fence: int | None = None  # woken with this lease but stale: replay from the log
        self.next: tuple[str, int] | None = None  # (id, fence) its last commit claimed: this thread runs it next


class Parked:
    """A handler parked at its wait; its thread blocks in ``wait`` until ``wake``."""

    __slots__ = ("_cond", "_fence", "_woken", "execution_id", "fence", "last_seq")

    def __init__(self, execution_id: str, fence: int, last_seq: int) -> None:
        self.execution_id = execution_id
        self.fence = fence  # the lease its suspension was committed under
        self.last_seq = last_seq  # the seq its log ended at then
        self._cond = threading.Condition(threading.Lock())
        self._woken = False
        self._fence: int | None = None

    def wake(self, fence: int | None) -> None:
        """Go on under lease ``fence``, or (None) unwind."""
        with self._cond:
            self._woken, self._fence = True, fence
            self._cond.notify()

    def wait(self) -> int | None:
        with self._cond:
            self._cond.wait_for(lambda: self._woken)
            return self._fence

    def fresh(self, fence: int, row: ExecutionRow, now: float) -> bool:
        """Whether this worker's claim with ``fence``, of the execution now at ``row``, is
        the first since the handler parked, with the log where it left it."""
        return (
            fence == row.fence == self.fence + 1 and row.last_seq == self.last_seq and row.status == Status.RUNNING
            and (row.lease_expires or 0) > now and row.attempts <= 1
        )


class WarmCache:
    """At most ``size`` parked handlers, by execution id, least recently parked first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._parked: OrderedDict[str, Parked] = OrderedDict()
        self._swept_at = 0.0

    def __len__(self) -> int:
        return len(self._parked)

    def add(self, parked: Parked) -> None:
        """Keep ``parked``; discard the oldest ones beyond ``size``."""
        with self._lock:
            self._parked[parked.execution_id] = parked
            evicted = [self._parked.popitem(last=False)[1] for _ in range(len(self._parked) - self.size)]
        for old in evicted:
            old.wake(None)

    def take(self, execution_id: str) -> Parked | None:
        """Remove and return the handler parked for ``execution_id``, if any."""
        with self._lock:
            return self._parked.pop(execution_id, None)

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._parked)

    def discard(self, ids: Iterable[str]) -> None:
        """Unwind the handlers parked for ``ids``."""
        for execution_id in ids:
            parked = self.take(execution_id)
            if parked is not None:
                parked.wake(None)

    def sweep(self, statuses: Callable[[list[str]], dict[str, str]], now: float) -> None:
        """Discard the handlers of executions that ended or paused meanwhile (looked up once a second)."""
        if self._parked and now - self._swept_at >= SWEEP_EVERY:
            self._swept_at = now
            found = statuses(self.ids())
            self.discard(eid for eid in list(found) if found[eid] not in (Status.WAITING, Status.QUEUED, Status.RUNNING))

    def remove(self, parked: Parked) -> None:
        """Forget ``parked`` (not woken: its own thread calls this)."""
        with self._lock:
            if self._parked.get(parked.execution_id) is parked:
                del self._parked[parked.execution_id]


def park(
    cache: WarmCache, run: Run, ctx: ReplayContext, signal: Suspended, interrupts: Interrupts,
    carriers: threading.Semaphore, commit: Callable[[Run, Decision], bool], resume: Callable[[Run, Parked, int], bool],
) -> bool:
    """Commit the suspension ``signal`` and keep the handler here until this worker
    claims the execution again. True: go on from the wait (the caller checks it again);
    False: unwind (not parked, discarded, stale, or the commit failed). While parked,
    the thread gives back its place among the ``carriers`` (the activations that may run
    at once) and takes one again before the handler goes on or unwinds."""
    journal = ctx.journal
    if len(journal.history) + len(journal.pending) > MAX_PARKED_EVENTS:
        return False
    decision = suspend_decision(ctx, signal)
    parked = Parked(run.execution_id, run.fence, journal.next_seq - 1)
    run.settled = True
    interrupts.leave(run.execution_id)  # none may land in the commit, nor while parked
    cache.add(parked)  # before the commit: one that makes the execution runnable at once wakes it
    if not commit(run, decision):
        cache.remove(parked)
        return False
    journal.committed()
    carriers.release()
    fence = parked.wait()
    carriers.acquire()
    if fence is None:
        return False
    interrupts.enter(run.execution_id)
    if not resume(run, parked, fence):
        run.replay_fence = fence
        return False
    run.fence, run.settled = fence, False
    return True


def resume(
    store: Store, clock: Clock, observer: WorkerObserver | None, activation: Callable[[str], Activation | None],
    run: Run, parked: Parked, fence: int, *, ctx: ReplayContext, live: StoreLive, flow: LoadedFlow,
) -> bool:
    """Whether the handler parked for ``run`` may go on under lease ``fence`` (see
    ``Parked.fresh``); if so, set its context up for this activation, as a replay would."""
    try:
        row = store.get_execution(run.execution_id)
    except StoreError:  # the replay meets the error again, and handles it
        row = None
    if row is None or not parked.fresh(fence, row, clock()):
        return False
    act = activation(run.execution_id)
    if act is not None:
        act.limit_from_flow(flow.module_globals, row.flow)
    if observer is not None:
        observer.claimed(row, clock())
    live.fence = fence
    ctx.resumed(row)
    return True
