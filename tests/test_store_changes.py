"""``Store.wait_for_change``: how a worker notices commits made by other processes."""

from __future__ import annotations

import threading

from store.model import SettingWrite
from store.open import open_store


def test_wait_for_change_sees_a_commit_of_another_connection(db_url):
    watcher, writer = open_store(db_url), open_store(db_url)
    try:
        assert watcher.wait_for_change(0)  # a thread's first look: anything may be new
        assert not watcher.wait_for_change(0)
        writer.save_setting(SettingWrite("a", 1))
        assert watcher.wait_for_change(0)
        assert not watcher.wait_for_change(0.01)  # nothing new: it waits, then says so

        looked = threading.Event()
        results: list[bool] = []

        def wait() -> None:
            assert watcher.wait_for_change(0)  # this thread's first look
            looked.set()
            results.append(watcher.wait_for_change(60))

        thread = threading.Thread(target=wait)
        thread.start()
        looked.wait()
        writer.save_setting(SettingWrite("b", 2))  # a commit while it waits ends the wait
        thread.join(60)
        assert not thread.is_alive() and results == [True]
    finally:
        watcher.close()
        writer.close()
