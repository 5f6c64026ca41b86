"""Wake-ups across hosts: ``LISTEN`` on a dedicated PostgreSQL connection.

Every write that makes work runnable (or moves a timer) sends ``NOTIFY`` on
``CHANNEL`` inside its own transaction, so the notification is delivered exactly when
the change is visible. A thread here blocks on the listening connection and counts the
notifications; ``wait_for_change`` waits on that count, without a query. A periodic
sweep (``ENGINE_PG_SWEEP_SECONDS``, 5 s by default) answers True as a safety net, for a
notification lost while the listening connection was being re-opened.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from store.errors import StoreClosedError

log = logging.getLogger(__name__)

#: The channel every change is announced on.
CHANNEL = "engine_changes"

#: Seconds between safety-net sweeps, unless ``ENGINE_PG_SWEEP_SECONDS`` says otherwise.
DEFAULT_SWEEP = 5.0

#: Seconds between tries to re-open a lost listening connection.
_RECONNECT_PAUSE = 0.5


def sweep_seconds() -> float:
    """The safety-net sweep interval (``ENGINE_PG_SWEEP_SECONDS``)."""
    return float(os.environ.get("ENGINE_PG_SWEEP_SECONDS") or DEFAULT_SWEEP)


class ChangeListener:
    """Counts the notifications of ``CHANNEL`` in a background thread, started when first
    asked (a process that only reads, as most commands do, opens no listening connection).

    Args:
        connect: opens a new autocommit psycopg connection (raises ``StoreError``).
        sweep: seconds after which ``wait_for_change`` says True without a notification.
    """

    def __init__(self, connect: Callable[[], Any], sweep: float) -> None:
        self._connect = connect
        self.sweep = sweep
        self._cond = threading.Condition()
        self._count = 0
        self._local = threading.local()
        self._stop = threading.Event()
        self._waker, self._woken = socket.socketpair()  # close() writes to end the thread's select at once
        self._conn: Any = None
        self._thread: threading.Thread | None = None

    def _started(self) -> None:
        """Listen from now on (opening the connection and the thread once)."""
        with self._cond:
            if self._thread is not None:
                return
            if self._stop.is_set():
                raise StoreClosedError("the database was closed before waiting for changes: this process is stopping")
            self._conn = self._listen()
            self._thread = threading.Thread(target=self._run, name="engine-pg-listen", daemon=True)
            self._thread.start()

    @property
    def count(self) -> int:
        """Notifications (and re-opened connections) seen so far (listening from the first look)."""
        if self._thread is None:
            self._started()
        return self._count

    def _listen(self) -> Any:
        conn = self._connect()
        conn.execute(f"LISTEN {CHANNEL}")
        return conn

    def _bump(self) -> None:
        with self._cond:
            self._count += 1
            self._cond.notify_all()

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                select.select([self._conn.fileno(), self._woken], [], [])
                if self._stop.is_set():
                    return
                for _ in self._conn.notifies(timeout=0):  # what arrived (one poll, no wait)
                    self._bump()
            except psycopg.Error as exc:
                if self._stop.is_set():
                    return
                log.warning("lost the connection listening for changes (%s); re-opening it", exc)
                self._reopen()

    def _reopen(self) -> None:
        while not self._stop.wait(_RECONNECT_PAUSE):
            try:
                self._conn.close()
                self._conn = self._listen()
            except Exception as exc:  # noqa: BLE001 - the server may be down for a while: keep trying
                log.warning("cannot re-open the connection listening for changes: %s", exc)
                continue
            self._bump()  # a change may have been announced while nobody listened
            return

    def wait_for_change(self, timeout: float) -> bool:
        """Whether a change was announced since this thread last asked (the first call of
        a thread, and every ``sweep`` seconds, say True), waiting up to ``timeout`` s."""
        if self._thread is None:
            self._started()
        now = time.monotonic()
        deadline = now + timeout
        with self._cond:
            while True:
                seen = getattr(self._local, "seen", None)
                swept = getattr(self._local, "swept", 0.0)
                if seen != self._count or now - swept >= self.sweep:
                    self._local.seen, self._local.swept = self._count, now
                    return True
                left = min(deadline, swept + self.sweep) - now
                if now >= deadline:
                    return False
                self._cond.wait(left)
                now = time.monotonic()

    def close(self) -> None:
        """Stop the thread (at once: it is woken) and close the listening connection."""
        with self._cond:
            self._stop.set()
        self._waker.send(b"x")
        if self._thread is not None:
            self._thread.join(2)
            self._conn.close()
        self._waker.close()
        self._woken.close()
