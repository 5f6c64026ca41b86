"""Leader/follower group commit: many threads' writes share one transaction and one sync.

A thread that submits while no commit is under way becomes the leader and commits at
once (no hand-off cost when uncontended). Threads that submit meanwhile queue up; when
the leader is done it hands leadership to the first of them, who commits the whole
queue in one transaction. Under load, N concurrent executions pay one fsync, not N.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Ticket(Generic[T, R]):
    __slots__ = ("done", "error", "item", "lead", "result")

    def __init__(self, item: T) -> None:
        self.item = item
        self.result: R | None = None
        self.error: BaseException | None = None
        self.done: threading.Lock | None = None  # a follower waits on it; the leader releases it
        self.lead = False


class GroupCommit(Generic[T, R]):
    """Batches ``submit`` calls from many threads into calls of ``apply_batch``.

    ``apply_batch(items)`` returns one result per item, or an exception instance in
    place of a result for an item that failed on its own (the others still commit).
    An exception raised by ``apply_batch`` itself fails the whole batch.
    """

    def __init__(self, apply_batch: Callable[[Sequence[T]], list[R | BaseException]]) -> None:
        self._apply_batch = apply_batch
        self._lock = threading.Lock()
        self._queue: list[_Ticket[T, R]] = []
        self._busy = False

    def submit(self, item: T) -> R:
        with self._lock:
            alone = not self._busy  # then the queue is empty: commit at once, without a ticket
            self._busy = True
            if not alone:
                ticket: _Ticket[T, R] = _Ticket(item)
                ticket.done = done = threading.Lock()
                done.acquire()
                self._queue.append(ticket)
        if alone:
            return self._alone(item)
        done.acquire()  # until the leader has committed this ticket's batch or hands over the lead
        if ticket.lead:
            self._lead()
        if ticket.error is not None:
            raise ticket.error
        return ticket.result  # type: ignore[return-value]

    def _alone(self, item: T) -> R:
        """Commit ``item`` by itself, then hand the lead to whoever queued meanwhile."""
        try:
            result = self._apply_batch([item])[0]
        except BaseException as exc:  # the whole transaction failed
            result = exc
        self._hand_over()
        if isinstance(result, BaseException):
            raise result
        return result

    def _hand_over(self) -> None:
        """The next queued ticket leads the next batch; none queued, no commit is under way."""
        with self._lock:
            if self._queue:
                successor = self._queue[0]
                successor.lead = True
                assert successor.done is not None  # queued while busy: a follower
                successor.done.release()
            else:
                self._busy = False

    def _lead(self) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            results = self._apply_batch([t.item for t in batch])
        except BaseException as exc:  # the whole transaction failed
            results = [exc] * len(batch)
        for ticket, result in zip(batch, results):
            if isinstance(result, BaseException):
                ticket.error = result
            else:
                ticket.result = result
        self._hand_over()
        for ticket in batch:
            if ticket.done is not None and not ticket.lead:  # the leader's own ticket is not waited on
                ticket.done.release()
