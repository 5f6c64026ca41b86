"""The Store contract, operation by operation, on both backends with the same assertions:
a SQLite file and a fresh PostgreSQL database (skipped without ENGINE_TEST_POSTGRES_DSN).

Nothing is faked: each test opens the real store through ``store.open.open_store``.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stores import fresh_postgres
from store.access import AccessStore
from store.base import Store
from store.errors import LeaseLostError, StoreError, WrongStatusError
from store.events import Event, ExecutionControlled, ExecutionEnded, LogRecorded, MessageSent, StepCompleted
from store.flow_origins import FlowOrigins
from store.metrics import runnable_count
from store.model import Claim, Commit, ConnectorWrite, NewExecution, NewMessage, SettingWrite, WaitSpec
from store.open import open_store
from store.schedules import ScheduleRow, ScheduleStore
from store.search import Search

SOURCE = "def handler(system, this, inputs):\n    return None\n"


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where the store lives: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "engine.db")
    else:
        with fresh_postgres() as found:
            yield found


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    opened = open_store(url)
    try:
        yield opened
    finally:
        opened.close()


def _new(store: Store, eid: str, **kw: Any) -> NewExecution:
    version = store.put_flow("f", SOURCE)
    new = NewExecution(eid, "f", version, {"x": 1}, **kw)
    if kw.get("parent_id") is None:
        store.create_execution(new, time.time())
    return new


def _claim_one(store: Store, eid: str) -> int:
    claimed = dict(store.claim("w1", 10, 30, time.time()))
    assert eid in claimed
    return claimed[eid]


def test_flows_are_kept_by_version(store):
    v1 = store.put_flow("f", SOURCE)
    v2 = store.put_flow("f", SOURCE + "# two\n", path="f.py")
    assert store.put_flow("f", SOURCE + "# two\n", path="f.py") == v2
    assert store.get_flow("f").version == v2
    assert store.get_flow_version(v1).source == SOURCE
    assert [f.version for f in store.flow_versions("f")] == [v1, v2]
    assert [f.name for f in store.list_flows()] == ["f"]
    assert store.get_flow("nope") is None and store.get_flow_version("0" * 64) is None


def test_executions_are_created_listed_and_found(store):
    _new(store, "aaa111")
    _new(store, "aab222", status="PAUSED", name="second")
    assert store.get_execution("aaa111").input_value == {"x": 1}
    assert store.get_execution("missing") is None
    assert sorted(store.find_executions("aa")) == ["aaa111", "aab222"]
    assert store.find_executions("aab") == ["aab222"]
    assert [r.id for r in store.list_executions()] == ["aab222", "aaa111"]
    assert [r.id for r in store.list_executions(status="PAUSED")] == ["aab222"]
    assert [r.id for r in store.list_executions(limit=1)] == ["aab222"]
    assert store.query_execution_ids({"field": "name", "op": "eq", "value": "second"}) == ["aab222"]
    assert store.query_execution_ids({"field": "id", "op": "in", "value": []}) == []
    assert store.query_execution_ids(None) == ["aaa111", "aab222"]
    assert store.statuses(["aaa111", "aab222", "zz"]) == {"aaa111": "QUEUED", "aab222": "PAUSED"}
    assert store.count_by_status() == {"QUEUED": 1, "PAUSED": 1}
    assert store.count_tree("aaa111") == 1
    assert [type(e.body).__name__ for e in store.load_events("aaa111")] == ["ExecutionStarted"]


def test_claim_lease_fence_and_release(store):
    _new(store, "e1")
    fence = _claim_one(store, "e1")
    assert store.claim("w2", 10, 30, time.time()) == []  # held: nobody else gets it
    assert store.lease_held("e1", fence, time.time())
    assert not store.lease_held("e1", fence + 1, time.time())
    assert store.renew_leases([("e1", fence), ("e1", fence - 1)], 30, time.time()) == ["e1"]
    store.release_leases([("e1", fence)], note="it broke")
    row = store.get_execution("e1")
    assert (row.status, row.attempts, row.attempt_log) == ("QUEUED", 1, "it broke")
    fence2 = _claim_one(store, "e1")
    assert fence2 > fence
    with pytest.raises(LeaseLostError):
        store.commit(Commit("e1", fence, [Event(2, time.time(), LogRecorded("late"))]))
    assert store.get_execution("e1").last_seq == 1


def test_an_expired_lease_is_taken_over(store):
    _new(store, "e1")
    store.claim("w1", 1, 0.2, time.time())
    assert store.claim("w2", 1, 30, time.time()) == []
    due = store.next_wake_at()
    assert due is not None
    time.sleep(max(0.0, due - time.time()) + 0.3)
    claimed = store.claim("w2", 1, 30, time.time())
    assert [eid for eid, _ in claimed] == ["e1"]
    assert "did not finish: its lease expired" in store.get_execution("e1").attempt_log


def test_commit_appends_and_ends(store):
    _new(store, "e1")
    fence = _claim_one(store, "e1")
    now = time.time()
    store.commit(Commit("e1", fence, [Event(2, now, StepCompleted("s", 42)), Event(3, now, LogRecorded("hello"))]))
    assert [e.seq for e in store.load_events("e1", after_seq=1)] == [2, 3]
    result = store.commit(Commit("e1", fence, [Event(4, now, ExecutionEnded("ENDED_SUCCESS", "ok", {"y": 2}))],
                                 status="ENDED_SUCCESS", message="ok", output_value={"y": 2}))
    assert result.status == "ENDED_SUCCESS"
    row = store.get_execution("e1")
    assert (row.status, row.output_value, row.message, row.lease_owner) == ("ENDED_SUCCESS", {"y": 2}, "ok", None)
    assert not store.has_pending_work()


def test_children_waits_and_dependencies(store):
    parent = _new(store, "p")
    fence = _claim_one(store, "p")
    child = NewExecution("p.c", "f", parent.flow_version, None, parent_id="p", root_id="p", depth=1)
    result = store.commit(Commit(
        "p", fence, creates=[child], status="WAITING", wait=WaitSpec(["p.c"], 1, False),
        claim=Claim("w1", 30, 5),
    ))
    assert result.status == "WAITING" and [eid for eid, _ in result.claimed] == ["p.c"]
    assert [c.id for c in store.children("p")] == ["p.c"]
    assert store.waiting_on("p.c", ["p"]) == ["p"]
    child_fence = result.claimed[0][1]
    woke = store.commit(Commit("p.c", child_fence, status="ENDED_ERROR", message="boom"))
    assert woke.runnable == ["p"]
    assert store.get_execution("p").status == "QUEUED"
    assert store.count_tree("p") == 2


def test_a_due_timer_is_claimed(store):
    _new(store, "e1")
    fence = _claim_one(store, "e1")
    store.commit(Commit("e1", fence, status="WAITING", wake_at=time.time() + 3600))
    assert store.claim("w1", 5, 30, time.time()) == []
    assert store.next_wake_at() > time.time() + 3000
    late = store.claim("w1", 5, 30, time.time() + 7200)  # a caller whose clock is two hours ahead
    on_db_clock = store.path.startswith("postgresql")  # PostgreSQL decides by its own clock
    assert late == ([] if on_db_clock else [("e1", 2)])


def test_settings_and_connectors(store):
    store.save_setting(SettingWrite("s", {"a": [1, 2]}, "desc"))
    store.save_setting(SettingWrite("s", {"a": 3}))
    assert store.get_setting("s") == ({"a": 3}, "desc")
    assert store.list_settings() == [("s", {"a": 3}, "desc")]
    store.save_setting(SettingWrite("s", delete=True))
    assert store.get_setting("s") is None
    store.save_connector(ConnectorWrite("c", "REST", {"url": "http://x"}, "d"))
    assert store.get_connector("c") == ConnectorWrite("c", "REST", {"url": "http://x"}, "d")
    assert [c.name for c in store.list_connectors()] == ["c"]


def test_messages_are_answered_and_wake(store):
    _new(store, "e1")
    fence = _claim_one(store, "e1")
    sent = MessageSent("m1", "subject", "text", None, True, None)
    store.commit(Commit("e1", fence, [Event(2, time.time(), sent)], status="WAITING", wait_message="m1",
                        messages=[NewMessage("m1", 2, "subject", "text", wait=True)]))
    assert [m.status for m in store.list_messages(status="waiting")] == ["waiting"]
    assert store.answer_message("m1", {"ok": True}) == ["e1"]
    found = store.get_message("m1")
    assert (found.status, found.response, found.wait) == ("answered", {"ok": True}, True)
    with pytest.raises(ValueError, match="is answered"):
        store.answer_message("m1", 1)


def test_control_operations(store):
    new = _new(store, "e1")
    assert store.pause_execution("e1", time.time()) == ("QUEUED", "PAUSED")
    assert store.start_execution("e1", time.time()) == "QUEUED"
    with pytest.raises(WrongStatusError):
        store.start_execution("e1", time.time())
    assert store.cancel_execution("e1", time.time()) == (["e1"], [])
    assert store.retry_execution("e1", new.flow_version, time.time()) == 2
    fork = NewExecution("e2", "f", new.flow_version, None)
    store.fork_execution(fork, [], [], ExecutionControlled("fork", "QUEUED", "QUEUED"), time.time())
    assert [type(e.body).__name__ for e in store.load_events("e2")] == ["ExecutionStarted", "ExecutionControlled"]
    assert store.check() == []


def test_another_connection_sees_changes(store, url):
    assert store.wait_for_change(0)  # the first look of a thread says so
    other = open_store(url)
    try:
        _new(other, "e1")
    finally:
        other.close()
    assert store.wait_for_change(5)
    assert store.get_execution("e1").status == "QUEUED"


def test_side_stores(store):
    _new(store, "e1")
    fence = _claim_one(store, "e1")
    store.commit(Commit("e1", fence, [Event(2, time.time(), LogRecorded("the quick brownfox"))]))
    assert [r.id for r in Search(store).executions("brown")] == ["e1"]
    assert Search(store).executions("slow") == []
    access = AccessStore(store)
    access.add_token("t", "d1")
    assert access.revoke_token("t") and not access.revoke_token("t")
    access.add_token("t", "d2")
    assert [(t.name, t.digest, t.revoked_at) for t in access.tokens()] == [("t", "d2", None)]
    access.add_webhook("h", "f", "d")
    with pytest.raises(ValueError):
        access.add_webhook("h", "f", "d")
    assert access.webhook("h").flow == "f" and access.remove_webhook("h")
    schedules = ScheduleStore(store)
    schedules.add(ScheduleRow("s", "u", "f", "* * * * *", "UTC", None, "latest", False, 100, None, None, 1.0))
    assert [s.name for s in schedules.due(200)] == ["s"] and schedules.next_due() == 100
    version = store.get_flow("f").version
    assert schedules.fire("s", 100, 160, [(100, NewExecution("s.100", "f", version, None))])
    assert not schedules.fire("s", 100, 160, [(100, NewExecution("s.100", "f", version, None))])
    origins = FlowOrigins(store)
    origins.record([version], "repo", "abc")
    assert origins.commit_of(version) == "abc"
    assert runnable_count(store, time.time()) == 1  # s.100 (e1 is leased)


def test_unreachable_server_is_one_line():
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://someone:s3cret@127.0.0.1:1/engine")
    text = str(caught.value)
    assert "\n" not in text and "s3cret" not in text and "postgresql://someone:***@127.0.0.1:1/engine" in text


def test_concurrent_commits_share_transactions_and_a_refused_one_fails_alone(store):
    ids = [f"e{i:02d}" for i in range(24)]
    for eid in ids:
        _new(store, eid)
    fences = dict(store.claim("w1", len(ids), 30, time.time()))
    fences["e00"] -= 1  # a worker that lost its lease
    barrier = threading.Barrier(len(ids))

    def commit(eid: str) -> str:
        barrier.wait()
        try:
            store.commit(Commit(eid, fences[eid], [Event(2, time.time(), StepCompleted("s", eid))]))
        except LeaseLostError:
            return "lost"
        return "ok"

    with ThreadPoolExecutor(len(ids)) as pool:
        outcomes = dict(zip(ids, pool.map(commit, ids)))
    assert outcomes == {eid: ("lost" if eid == "e00" else "ok") for eid in ids}
    assert [store.get_execution(eid).last_seq for eid in ids] == [1] + [2] * (len(ids) - 1)
    assert store.load_events("e07")[-1].body == StepCompleted("s", "e07")
