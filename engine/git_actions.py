"""A git sync as the action of a schedule slot or a webhook call.

The sync runs in the process that fires the slot (the one worker whose compare-and-set
took it, ``store.schedules``) or that answers the webhook, not as an execution: it
changes the engine's own flows, not the world, so it needs no replay, and it is
idempotent (flow versions are content-addressed: syncing a commit twice changes
nothing). How it ended (the commit and the flows registered, or one line saying why
nothing was) is recorded on the schedule or webhook, where ``schedules ls``,
``webhooks ls`` and the monitor's pages show it, and is the webhook's answer.

A sync is strict: a flow file that does not load (a syntax error) refuses the whole
commit, so no one's working flow is replaced by a broken one while no one watches.
One sync runs at a time in a process, so two pushes in quick succession register
their commits in order.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from engine import git_sync
from engine.errors import EngineError
from store.access import AccessStore, WebhookRow
from store.base import Store
from store.errors import StoreError
from store.git_actions import GitSource, SyncedFlowInfo, SyncOutcome
from store.schedules import ScheduleRow, ScheduleStore

log = logging.getLogger(__name__)

_ONE_AT_A_TIME = threading.Lock()


def run(store: Store, source: GitSource, slot: int | None = None) -> SyncOutcome:
    """Sync the flows of ``source``; how it ended (never raises: a bad repository, ref or
    flow file is the outcome's ``error``)."""
    with _ONE_AT_A_TIME:
        try:
            commit, synced = git_sync.sync_commit(store, source, strict=True)
        except (EngineError, StoreError) as exc:
            return SyncOutcome(time.time(), error=" ".join(str(exc).split()), slot=slot)
        except Exception as exc:  # a bug must not take the server down: say so in one line, log the rest
            log.exception("git sync of %s failed", source.repo)
            return SyncOutcome(time.time(), error=f"unexpected {type(exc).__name__}: {exc}; the server's log has "
                               "the traceback (please report it); nothing more was registered", slot=slot)
    return SyncOutcome(time.time(), commit, [SyncedFlowInfo(s.name, s.project, s.version, s.changed) for s in synced],
                       slot=slot)


def summary(outcome: SyncOutcome) -> str:
    """One line for a listing: the commit and the flows, or why the sync failed."""
    if outcome.error is not None or outcome.commit is None:
        return f"failed: {outcome.error}"
    changed = [f.name for f in outcome.flows if f.changed]
    return (f"commit {outcome.commit[:12]}: {len(outcome.flows)} flow(s) registered"
            + (f", new versions of {', '.join(changed)}" if changed else ", none changed"))


def describe(source: GitSource) -> str:
    """``REPO`` with its ref and folder, as a listing shows the action."""
    return f"git sync {source.repo}" + (f" --ref {source.ref}" if source.ref != "HEAD" else "") + (
        f" --path {source.path}" if source.path else "")


def sync_webhook(store: Store, hook: WebhookRow) -> SyncOutcome:
    """Run the git sync of webhook ``hook`` and record how it ended."""
    assert hook.git is not None
    outcome = run(store, hook.git)
    AccessStore(store).record_sync(hook.name, hook.digest, outcome)
    _log(f"webhook {hook.name}", outcome)
    return outcome


def sync_slot(store: Store, row: ScheduleRow, slot: int) -> SyncOutcome:
    """Run the git sync of schedule ``row`` for ``slot`` (which this worker took) and
    record how it ended."""
    assert row.git is not None
    outcome = run(store, row.git, slot)
    ScheduleStore(store).record_sync(row.name, row.uid, outcome)
    _log(f"schedule {row.name} (slot {slot})", outcome)
    return outcome


def _log(what: str, outcome: SyncOutcome) -> None:
    if outcome.error is not None:
        log.error("%s: git sync failed: %s", what, outcome.error)
    else:
        log.info("%s: git sync %s", what, summary(outcome))


class SlotSyncs:
    """The git syncs of the schedule slots a worker took, run one after the other in a
    thread of their own, so that a slow clone holds up neither claims nor lease renewals.
    A slot taken while the same schedule's previous sync still waits or runs is skipped
    (that sync reads the newest commit anyway)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._queue: queue.Queue[tuple[ScheduleRow, int] | None] = queue.Queue()
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, row: ScheduleRow, slot: int) -> None:
        """Sync ``row``'s source for ``slot`` soon."""
        with self._lock:
            if row.uid in self._pending:
                log.warning("schedule %s: slot %s skipped: its previous git sync still runs", row.name, slot)
                return
            self._pending.add(row.uid)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="git-sync", daemon=True)
                self._thread.start()
        self._queue.put((row, slot))

    def close(self, grace: float) -> None:
        """Stop after the sync in flight, waiting at most ``grace`` seconds for it."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(grace)

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            row, slot = job
            try:
                sync_slot(self._store, row, slot)
            except StoreError as exc:  # the outcome could not be recorded: the next slot tries again
                log.error("schedule %s: %s (its git sync of slot %s is not recorded)", row.name, exc, slot)
            finally:
                with self._lock:
                    self._pending.discard(row.uid)
