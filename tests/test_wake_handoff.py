"""A wake-up inside one worker goes on without waking anything else: the commit that
made an execution runnable leased it (``Claim``), so the worker's loop, which would claim
in a write transaction of its own, is left asleep, and a woken execution that has no
handler parked here runs on the thread that committed, not on another one.

Real workers on a real database; their safety-net poll is 60 s, so nothing here waits
for it: a hang would show as the hang guard's failure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from engine.api import Engine
from engine.worker import Worker
from waiting import wait_until

FLOWS = Path(__file__).parent / "flows" / "handoff"
#: The workers' safety-net poll: nothing in these tests waits for it.
SAFETY_NET = 60.0


@pytest.fixture
def flows(engine: Engine) -> Engine:
    for name in ("handoff_parent", "handoff_child", "handoff_quick"):
        engine.register_file(FLOWS / f"{name}.py")
    return engine


@contextmanager
def working(worker: Worker) -> Iterator[None]:
    """Run ``worker`` as `engine worker` does (no stop condition) for the block."""
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        worker.stop()
        thread.join(30)
    assert not thread.is_alive(), "the worker did not stop"


def counting(calls: list[Any], method: Callable[..., Any]) -> Callable[..., Any]:
    """``method``, noting each call's result in ``calls``."""

    def counted(*args: Any, **kwargs: Any) -> Any:
        result = method(*args, **kwargs)
        calls.append(result)
        return result

    return counted


def ended(engine: Engine, *ids: str) -> Callable[[], bool]:
    return lambda: all(engine.get(i).ended for i in ids)


@pytest.mark.parametrize("warm_cache", [0, 8], ids=["replayed", "parked"])
def test_wakes_in_one_worker_leave_its_loop_asleep(flows: Engine, monkeypatch: pytest.MonkeyPatch, warm_cache: int) -> None:
    claims: list[Any] = []
    monkeypatch.setattr(flows.store, "claim", counting(claims, flows.store.claim))
    with working(flows.worker(poll_interval=SAFETY_NET, warm_cache=warm_cache)):
        for _ in range(2):  # the second one is claimed on a notice: the worker is listening by then
            quick = flows.start("handoff_quick")
            wait_until(ended(flows, quick), f"warm-up {quick} to end")
        claims.clear()
        parent = flows.start("handoff_parent", {"n": 4})
        wait_until(ended(flows, parent), f"parent {parent} to end")
    assert flows.get(parent).status == "ENDED_SUCCESS", flows.get(parent).message
    # the parent's first activation came from the loop's claim; each of the 4 children and
    # each of the parent's 4 wake-ups was leased by the commit that made it runnable
    assert claims[0] == [(parent, 1)]
    assert [c for c in claims[1:] if c] == []
    assert len(claims) == 1


def test_a_woken_execution_runs_on_the_thread_that_woke_it(flows: Engine) -> None:
    """With no handler parked (warm cache off), the parent's replay after each child ends
    runs on the thread that committed the child's end. (Each child is leased by the commit
    that creates it, while the parent's handler still runs: a pool thread starts it.)"""
    parent = flows.start("handoff_parent", {"n": 4})
    with working(flows.worker(poll_interval=SAFETY_NET, warm_cache=0)):
        wait_until(ended(flows, parent), f"parent {parent} to end")
    row = flows.get(parent)
    assert row.status == "ENDED_SUCCESS", row.message
    assert row.output_value["parent"][1:] == row.output_value["children"]


def test_a_worker_with_one_slot_claims_the_work_it_had_to_leave(flows: Engine) -> None:
    """Executions queued while the only slot is busy are run one after another as the
    slot frees, without waiting for the safety-net poll, though the loop is no longer
    woken after every activation: on SQLite each end commit leases the next one, on
    PostgreSQL its NOTIFY sends the loop to claim it."""
    ids = [flows.start("handoff_quick") for _ in range(4)]
    with working(flows.worker(concurrency=1, poll_interval=SAFETY_NET)):
        wait_until(ended(flows, *ids), "the 4 queued executions to end")
    assert {flows.get(i).status for i in ids} == {"ENDED_SUCCESS"}
