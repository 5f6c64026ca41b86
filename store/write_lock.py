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


class WriteLock:
    """An exclusive lock on the file ``path``, opened (created 0600) at the first use."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Wait for the lock; raises ``OSError`` if the lock file cannot be opened."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
