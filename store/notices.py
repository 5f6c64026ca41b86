"""Wake-up notices between the processes that share one SQLite file.

A commit that makes work runnable tells the waiting workers of every process at once,
with no server: each thread that waits for changes (``SqliteStore.wait_for_change``)
listens on a unix datagram socket and names it by an empty file in the folder
``<database>-wake/``; after such a commit the writer sends one byte to every socket
named there. A waiter sleeps in the kernel, so it costs nothing while nothing happens.

A process that died leaves its file behind: the socket refuses the next notice and the
sender deletes the file. A socket whose queue is full (its owner is busy) drops the
notice, which loses nothing: one notice pending is enough to wake its owner.

On Linux the sockets live in the abstract namespace (no path-length limit, gone with
their process); elsewhere the file in the folder is the socket itself.

Measured on a 2-core machine (benchmarks/RESULTS.md): a notice reaches a waiting process
in 0.1 ms (p50) and a waiter uses 0.005% of a core. watchfiles' Rust watcher (inotify) on
a file that writers touch looks at its queue every ``step`` ms: 1.7 ms and 1.6% of a core
at step=1, 8.5 ms and 0.4% at step=5, so it was not used.
"""

from __future__ import annotations

import os
import select
import socket
import sys
import threading
import uuid
import weakref
from collections.abc import Callable

from store.errors import StoreClosedError, StoreError
from store.model import Commit, CommitResult

#: Abstract socket names start with this, then the file's name (Linux).
_ABSTRACT = b"\0durable-engine-wake/"


def _address(folder: str, name: str) -> str | bytes:
    return _ABSTRACT + name.encode() if sys.platform == "linux" else os.path.join(folder, name)


def wakes_others(commit: Commit, result: CommitResult) -> bool:
    """Whether an execution's commit needs a notice: it made executions runnable that it did
    not lease to its own worker, cancelled some that may run elsewhere, or set a timer."""
    timer = result.status == "WAITING" and commit.wake_at is not None
    return len(result.claimed) < len(result.runnable) or bool(commit.cancel) or timer


class Listener:
    """One thread's socket: ``wait`` returns when a notice came or the time is up."""

    def __init__(self, folder: str) -> None:
        self.name = uuid.uuid4().hex[:16]
        self.file = os.path.join(folder, self.name)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._closed = False
        try:
            self._sock.bind(_address(folder, self.name))
            if sys.platform == "linux":
                os.close(os.open(self.file, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        except OSError:
            self._sock.close()
            raise

    def wait(self, timeout: float) -> bool:
        """Whether a notice came within ``timeout`` seconds (all pending ones are taken).
        Raises ``StoreClosedError`` once the store was closed (even by another thread meanwhile)."""
        try:
            ready = select.select([self._sock], [], [], max(timeout, 0.0))[0]
            if ready and not self._closed:
                while self._sock.recv(64, socket.MSG_DONTWAIT):
                    pass
        except BlockingIOError:  # all taken
            pass
        except (OSError, ValueError):  # closed under this wait (a closed socket's fileno is -1)
            if not self._closed:
                raise
        if self._closed:
            raise StoreClosedError(f"the database was closed while waiting for changes ({self.file})")
        return bool(ready)

    def close(self) -> None:
        """Stop listening: a ``wait`` in another thread returns at once (and raises)."""
        self._closed = True
        try:
            os.unlink(self.file)
        except FileNotFoundError:
            pass
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in select
        except OSError:
            pass
        self._sock.close()


class _Held:
    """Kept in a thread's locals, so that its listener is closed when the thread ends."""

    __slots__ = ("__weakref__",)


class Notices:
    """The notice folder of one database: this store's listeners, and sending to all."""

    def __init__(self, database: str) -> None:
        self.folder = database + "-wake"
        self._local = threading.local()
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._closed = False
        self._sender: socket.socket | None = None

    def listener(self) -> Listener:
        """This thread's listener, made (with the folder, mode 0700) at the first call."""
        found: Listener | None = getattr(self._local, "listener", None)
        if found is not None:
            return found
        with self._lock:
            if self._closed:
                raise StoreClosedError(f"the database was closed before waiting for changes ({self.folder})")
            try:
                os.makedirs(self.folder, mode=0o700, exist_ok=True)
                made = self._local.listener = Listener(self.folder)
            except OSError as exc:
                raise StoreError(
                    f"cannot listen for wake-up notices in {self.folder}: {exc.strerror or exc}; make the "
                    "database's folder writable (or, outside Linux, its path shorter than about 80 characters)"
                ) from exc
            self._listeners.append(made)
        self._local.held = _Held()
        weakref.finalize(self._local.held, self._drop, made)
        return made

    def _drop(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)
        listener.close()

    def wait(self, timeout: float, seen_commit: Callable[[], bool]) -> bool:
        """This thread's wait for a change (``SqliteStore.wait_for_change``): True at once if
        ``seen_commit()`` (another connection committed), else after a notice or ``timeout``
        seconds, whether either came."""
        listener = self.listener()
        if seen_commit():
            return True
        if timeout <= 0:
            return False
        noticed = listener.wait(timeout)
        return seen_commit() or noticed

    def send(self) -> None:
        """Tell every listener of this database, in every process, to look for work now.
        Never raises: a notice that cannot be sent is caught by the waiters' slow poll."""
        try:
            names = os.listdir(self.folder)
        except OSError:
            return  # nobody listens yet
        with self._lock:
            if self._sender is None:
                self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sender.setblocking(False)
            sender = self._sender
            for name in names:
                try:
                    sender.sendto(b"!", _address(self.folder, name))
                except ConnectionRefusedError:  # its process died (or closed without deleting)
                    try:
                        os.unlink(os.path.join(self.folder, name))
                    except OSError:
                        pass
                except OSError:  # queue full (a notice is pending there), closing, or not a socket
                    pass

    def close(self) -> None:
        """Close every listener of this store (waking their waiters) and the sender."""
        with self._lock:
            self._closed = True
            listeners, self._listeners = self._listeners, []
            if self._sender is not None:
                self._sender.close()
                self._sender = None
        for found in listeners:
            found.close()
