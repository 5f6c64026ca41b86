"""``Store.wait_for_change``: how a worker notices commits made by other processes.

A commit that makes work runnable sends a notice (``store.notices``) that ends a wait at
once; any other commit of another connection is seen when a wait begins or ends. Waits
here are long (``LONG``): one that ends early can only have been ended by a notice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from store.errors import StoreClosedError
from store.model import NewExecution, SettingWrite
from store.open import open_store
from store.sqlite import SqliteStore
from waiting import wait_until

#: A wait no test sits through: ending well before it proves a notice ended it.
LONG = 60.0


def waiting(store: SqliteStore) -> tuple[threading.Thread, list[object], Callable[[], bool]]:
    """A thread that waits up to LONG for a change; (thread, [result or error], is it listening)."""
    looked = threading.Event()
    results: list[object] = []

    def wait() -> None:
        assert store.wait_for_change(0)  # this thread's first look: anything may be new
        looked.set()
        try:
            results.append(store.wait_for_change(LONG))
        except StoreClosedError as exc:
            results.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    return thread, results, looked.is_set


def new_execution(store: SqliteStore, number: int) -> None:
    version = store.put_flow("noop", "def handler(system, this, inputs):\n    pass\n")
    store.create_execution(NewExecution(f"e{number}", "noop", version, {}), time.time())


def test_wait_for_change_sees_a_commit_of_another_connection(db_url, monkeypatch):
    monkeypatch.setenv("ENGINE_PG_SWEEP_SECONDS", str(LONG * 10))  # only the commit can end the wait below
    watcher, writer = open_store(db_url), open_store(db_url)
    try:
        assert watcher.wait_for_change(0)  # a thread's first look: anything may be new
        assert not watcher.wait_for_change(0)
        writer.save_setting(SettingWrite("a", 1))
        # SQLite sees it when the wait begins (data_version); PostgreSQL when its NOTIFY,
        # delivered asynchronously, reaches the listening connection.
        assert watcher.wait_for_change(LONG)
        assert not watcher.wait_for_change(0.01)  # nothing new: it waits, then says so
    finally:
        watcher.close()
        writer.close()


@pytest.mark.parametrize("write", ["new execution", "control operation"])
def test_a_commit_that_makes_work_runnable_ends_a_long_wait_at_once(tmp_path, write):
    db = str(tmp_path / "engine.db")
    watcher, writer = open_store(db), open_store(db)
    try:
        new_execution(writer, 0)
        thread, results, listening = waiting(watcher)
        wait_until(listening, "the waiter listened")
        began = time.monotonic()
        if write == "new execution":
            new_execution(writer, 1)
        else:
            writer.cancel_execution("e0", time.time())
        thread.join(LONG)
        assert results == [True]
        assert time.monotonic() - began < LONG / 4  # a notice ended it, not the time running out
    finally:
        watcher.close()
        writer.close()


def test_closing_the_store_ends_a_wait_in_another_thread(tmp_path):
    store = open_store(str(tmp_path / "engine.db"))
    thread, results, listening = waiting(store)
    wait_until(listening, "the waiter listened")
    store.close()
    thread.join(LONG / 4)
    assert not thread.is_alive() and isinstance(results[0], StoreClosedError)


WAITER = """
import sys
from store.open import open_store
store = open_store(sys.argv[1])
store.wait_for_change(0)
print("listening", flush=True)
store.wait_for_change(600)
"""


def test_a_killed_waiter_is_forgotten_and_the_others_still_hear(tmp_path):
    """A process killed while waiting leaves its name in ``<db>-wake``; the next notice
    finds its socket gone, deletes the name, and still reaches the live waiters."""
    db = str(tmp_path / "engine.db")
    writer = open_store(db)
    new_execution(writer, 0)
    doomed = subprocess.Popen([sys.executable, "-c", WAITER, db], stdout=subprocess.PIPE, text=True)
    try:
        assert doomed.stdout is not None and doomed.stdout.readline() == "listening\n"
        dead = set(os.listdir(db + "-wake"))
        watcher = open_store(db)
        thread, results, listening = waiting(watcher)
        wait_until(listening, "the live waiter listened")
        assert len(dead) == 1 and len(os.listdir(db + "-wake")) == 2
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        new_execution(writer, 1)
        thread.join(LONG / 4)
        assert results == [True]
        assert dead.isdisjoint(os.listdir(db + "-wake"))  # the dead process's name is gone
        watcher.close()
        assert os.listdir(db + "-wake") == []  # a thread that ends, a store that closes, take theirs away
    finally:
        doomed.kill()
        doomed.wait()
        writer.close()
