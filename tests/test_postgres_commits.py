"""The PostgreSQL store's short paths for commits keep every outcome of the ordinary one:
a batch of step commits sent in one round trip (``store.pg_append``) refuses or pauses
each commit on its own, and the wake of waiters done by a function of the schema
(``store.pg_schema.WAKE_WAITERS``) is there, and wakes, in a database made before it.
"""

from __future__ import annotations

import time

import psycopg

from stores import fresh_postgres
from store.errors import LeaseLostError
from store.events import Event, StepCompleted
from store.model import Claim, Commit, CommitResult, NewExecution, WaitSpec
from store.open import open_store
from store.postgres import PostgresStore

SOURCE = "def handler(system, this, inputs):\n    return None\n"


def test_a_batch_of_step_commits_in_one_round_trip_keeps_each_commits_outcome() -> None:
    """A lost lease and a stale ``last_seq`` refuse that commit alone, a pause asked while
    it ran pauses that execution with its step recorded, and the others' steps are
    recorded. A lease the store let go is not taken as held any longer."""
    with fresh_postgres() as url:
        store = open_store(url)
        assert isinstance(store, PostgresStore)
        try:
            version = store.put_flow("f", SOURCE)
            ids = ("ok", "lost", "stale", "paused")
            for eid in ids:
                store.create_execution(NewExecution(eid, "f", version, None), time.time())
            fences = dict(store.claim("w1", len(ids), 30, time.time()))
            base = {eid: store.get_execution(eid).last_seq for eid in ids}  # type: ignore[union-attr]
            store.pause_execution("paused", time.time())

            def step(eid: str, seq: int, fence: int) -> Commit:
                return Commit(eid, fence, events=[Event(base[eid] + seq, time.time(), StepCompleted("s", seq))])

            batch = [step("ok", 1, fences["ok"]), step("lost", 1, fences["lost"] + 1),
                     step("stale", 5, fences["stale"]), step("paused", 1, fences["paused"])]
            results = store._apply_batch(batch)

            assert [type(r).__name__ for r in results] == ["CommitResult", "LeaseLostError", "LeaseLostError",
                                                           "CommitResult"], results
            assert isinstance(results[1], LeaseLostError) and isinstance(results[3], CommitResult)
            assert results[3].status == "PAUSED"
            assert [len(store.load_events(eid, base[eid])) for eid in ids[:3]] == [1, 0, 0]
            paused = store.get_execution("paused")
            assert paused is not None and paused.status == "PAUSED"
            assert [type(e.body).__name__ for e in store.load_events("paused", base["paused"])][0] == "StepCompleted"

            assert store.commit(step("ok", 2, fences["ok"])).lease_expires is not None
            assert store.lease_held("ok", fences["ok"], time.time())
            assert not store.lease_held("ok", fences["ok"] + 1, time.time())
            store.release_leases([("ok", fences["ok"])])
            assert not store.lease_held("ok", fences["ok"], time.time())
        finally:
            store.close()


def test_a_database_made_before_the_wake_function_gets_it_and_its_waiters_wake() -> None:
    with fresh_postgres() as url:
        open_store(url).close()
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("DROP FUNCTION engine_wake_waiters")
        store = open_store(url)
        try:
            version = store.put_flow("f", SOURCE)
            store.create_execution(NewExecution("p", "f", version, None), time.time())
            (_, fence), = store.claim("w1", 1, 30, time.time())
            child = NewExecution("p.c", "f", version, None, parent_id="p", root_id="p", depth=1)
            (_, child_fence), = store.commit(Commit("p", fence, creates=[child], claim=Claim("w2", 30, 1))).claimed
            store.commit(Commit("p", fence, status="WAITING", wait=WaitSpec(["p.c"], 1, False)))

            ended = store.commit(Commit("p.c", child_fence, status="ENDED_SUCCESS", claim=Claim("w2", 30, 1)))

            assert ended.runnable == ["p"] and [eid for eid, _ in ended.claimed] == ["p"]
            assert store.statuses(["p", "p.c"]) == {"p": "RUNNING", "p.c": "ENDED_SUCCESS"}
        finally:
            store.close()
