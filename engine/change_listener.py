"""The thread that turns other processes' commits into wake-ups of a worker's loop.

It waits in ``Store.wait_for_change``: a commit that makes work runnable ends the wait at
once (SQLite: a notice through ``store.notices``; PostgreSQL: ``NOTIFY``), any other
commit when the wait ends, after ``poll_interval`` seconds (the safety net). ``changes``
counts the changes seen; the loop compares it with the count it last acted on.
"""

from __future__ import annotations

import threading

from store.base import Store
from store.errors import StoreClosedError, StoreError


class ChangeListener:
    """Counts the store's changes under the worker's ``wakeup`` condition and wakes it."""

    def __init__(self, store: Store, poll_interval: float, wakeup: threading.Condition) -> None:
        self.store = store
        self.poll_interval = poll_interval
        self.wakeup = wakeup
        #: Commits by other connections seen so far; read and written under ``wakeup``.
        self.changes = 0
        #: What stopped the thread, for the loop to raise; read and written under ``wakeup``.
        self.error: StoreError | None = None
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    def ensure_running(self) -> None:
        """Start the thread unless it runs (it ends on a store error, which ``take_error`` hands over)."""
        if self._stop is None or self._thread is None or not self._thread.is_alive():
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._listen, args=(self._stop,), name="listener", daemon=True)
            self._thread.start()

    def take_error(self) -> StoreError | None:
        """The error that ended the thread, once; hold ``wakeup``. The next ``ensure_running`` restarts it."""
        error, self.error = self.error, None
        if error is not None:
            self._stop = None
        return error

    def stop(self) -> None:
        """End the thread at its next wake-up."""
        if self._stop is not None:
            self._stop.set()
            self._stop = None

    def _listen(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                changed = self.store.wait_for_change(self.poll_interval)
            except StoreClosedError:  # this process is stopping
                return
            except StoreError as exc:  # the loop raises it
                with self.wakeup:
                    self.error = None if stop.is_set() else exc
                    self.wakeup.notify_all()
                return
            if changed:
                with self.wakeup:
                    self.changes += 1
                    self.wakeup.notify_all()
