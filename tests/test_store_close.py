"""Closing a store while another thread writes: the write in flight finishes, later ones
are refused with ``StoreClosedError``, never a closed or reused file descriptor."""

from __future__ import annotations

import threading

import pytest

from store.errors import StoreClosedError, StoreError
from store.model import SettingWrite
from store.open import open_store


@pytest.mark.parametrize("round_", range(5))
def test_a_store_closed_while_a_thread_writes_refuses_later_writes_cleanly(db_url, round_):
    store = open_store(db_url)
    written = threading.Event()
    errors: list[BaseException] = []
    count = 0

    def write() -> None:
        nonlocal count
        try:
            while True:
                store.save_setting(SettingWrite(f"s{count}", count))
                count += 1
                written.set()
        except StoreClosedError:
            return
        except BaseException as exc:  # an EBADF, a closed connection: what this test is for
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    written.wait(60)
    store.close()
    thread.join(60)
    assert not thread.is_alive()
    assert errors == [], f"after {count} writes: {errors!r}"
    with pytest.raises(StoreError, match="closed before this write"):
        store.save_setting(SettingWrite("late", 1))
    reopened = open_store(db_url)
    try:  # every write that returned is in the database
        assert reopened.get_setting(f"s{count - 1}") is not None
    finally:
        reopened.close()
