"""The write lock shared by every process that writes one SQLite file, granted in order.

SQLite's busy handler sleeps and retries: a writer that finds the lock taken sleeps for
growing intervals (up to 100 ms) while the others take the lock again and again, so one
worker can wait over a second for a commit while its neighbours barge (and with a short
lease, lose the lease meanwhile). Holding an exclusive ``flock`` on ``<database>-lock``
around every write transaction lets the kernel queue the writers instead: a waiter
sleeps in the kernel and is woken as soon as the lock is free, and one that asked later
waits behind it. SQLite's own lock is then free whenever ``BEGIN IMMEDIATE`` runs.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from store.errors import StoreClosedError


class WriteLock:
    """An exclusive lock on the file ``path``, opened (created 0600) at the first use.

    Within the process a guard is held from ``acquire`` to ``release``, so ``close`` waits
    for a write in flight instead of closing the file under it (a closed descriptor, or
    worse, its number reused by another file), and refuses every write after it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._guard = threading.Lock()
        self._closed = False

    def acquire(self) -> None:
        """Wait for the lock; raises ``OSError`` if the lock file cannot be opened and
        ``StoreClosedError`` after ``close``."""
        self._guard.acquire()
        try:
            if self._closed:
                raise StoreClosedError(f"the database was closed before this write ({self.path}): this process is stopping")
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._guard.release()
            raise

    def release(self) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._guard.release()

    @contextmanager
    def between_writes(self) -> Iterator[None]:
        """Hold this process's writes off for the block: none is in flight meanwhile, so the
        writing connection is idle and may be read from (raises ``StoreClosedError`` after ``close``)."""
        with self._guard:
            if self._closed:
                raise StoreClosedError(f"the database was closed ({self.path}): this process is stopping")
            yield

    def close(self) -> None:
        """Close the lock file once the write in flight (if any) is done; refuse later writes."""
        with self._guard:
            self._closed = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
