"""Stopping a handler's thread at its next line: the activation time limit and cancel.

A handler that runs flow code without calling flow_api (``while True: x += 1``) never
reaches a point where the engine could stop it. The worker raises an
``ActivationInterrupted`` in that thread instead (``PyThreadState_SetAsyncExc``), which
Python delivers at the thread's next line of Python code. (Code blocked inside C, such
as a long ``time.sleep``, sees it when that call returns.)

An interrupt never lands inside a store write: while the thread writes, a request is
held and raised when the write is done, so a commit is never cut in half. One still
pending when the activation ends is let in and dropped there: CPython offers no safe
way to withdraw it (``PyThreadState_SetAsyncExc(id, NULL)`` leaves the interpreter's
eval breaker set for good, which hangs any thread that is traced or profiled).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flow_api.exceptions import LifecycleSignal

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc


class ActivationInterrupted(LifecycleSignal):
    """The worker stopped this activation (time limit, cancel, the worker stopping).
    If your flow catches this with a bare ``except:``, re-raise
    ``flow_api.LifecycleSignal``; the worker raises it again until the handler stops."""


class TimeLimitReached(ActivationInterrupted):
    """The activation ran longer than its time limit."""


class ActivationStopped(ActivationInterrupted):
    """The execution was cancelled or its lease was lost, or the worker is stopping."""


class Interrupts:
    """Which threads run which activation, and raising an interrupt in one of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: dict[str, int] = {}  # execution id -> thread ident
        self._requested: dict[int, type[ActivationInterrupted]] = {}
        self._shielded: set[int] = set()
        self._injected: set[int] = set()  # threads an interrupt was raised in, perhaps still pending

    @contextmanager
    def running(self, execution_id: str) -> Iterator[None]:
        """The current thread runs ``execution_id`` until the block ends. The caller must
        catch ``ActivationInterrupted`` around the block: one may come as it ends."""
        ident = threading.get_ident()
        with self._lock:
            self._threads[execution_id] = ident
        try:
            yield
        finally:
            while True:  # an interrupt delivered here is caught; none can come once unregistered
                try:
                    with self._lock:
                        self._threads.pop(execution_id, None)
                        self._requested.pop(ident, None)
                        injected = ident in self._injected
                        self._injected.discard(ident)
                    if injected:
                        _absorb()
                    break
                except ActivationInterrupted:
                    continue

    def interrupt(self, execution_id: str, kind: type[ActivationInterrupted]) -> bool:
        """Raise ``kind`` in the thread running ``execution_id`` (at once, or when its
        store write is done); False if no thread runs it."""
        with self._lock:
            ident = self._threads.get(execution_id)
            if ident is None:
                return False
            self._requested[ident] = kind
            if ident not in self._shielded:
                self._injected.add(ident)
                _set_async_exc(ctypes.c_ulong(ident), ctypes.py_object(kind))
            return True

    def shielded(self) -> _Shield:
        """No interrupt lands inside this block; one requested meanwhile is raised after it."""
        return _Shield(self)


class _Shield:
    """The block of ``Interrupts.shielded`` (a class, not a generator: it wraps every commit)."""

    __slots__ = ("_ident", "_of")

    def __init__(self, of: Interrupts) -> None:
        self._of = of
        self._ident = threading.get_ident()

    def __enter__(self) -> None:
        of, ident = self._of, self._ident
        with of._lock:
            requested = of._requested.get(ident)
            if requested is None:
                of._shielded.add(ident)
            injected = ident in of._injected
            of._injected.discard(ident)
        if requested is not None:
            if injected:
                _absorb()
            raise requested()

    def __exit__(self, *exc: object) -> None:
        of, ident = self._of, self._ident
        with of._lock:
            of._shielded.discard(ident)
            requested = of._requested.get(ident)
        if requested is not None:
            raise requested()


def _absorb() -> None:
    """Let an interrupt still pending for this thread arrive, and drop it (CPython
    raises it at the next backward jump; if it already came, nothing happens)."""
    try:
        for _ in range(8):
            pass
    except ActivationInterrupted:
        pass
