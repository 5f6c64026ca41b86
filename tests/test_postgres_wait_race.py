"""PostgreSQL runs writers together: a parent's wait and its child's end, committed at the
same moment by two workers, must not lose the wake-up (on SQLite one writer at a time
makes this impossible). Each side runs the store's own commit statements on its own
connection; the child's end is held open while the parent registers its wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from stores import fresh_postgres
from store.dialect import PgConnection
from store.model import Claim, Commit, NewExecution, NewMessage, WaitSpec
from store.messages import answer_message
from store.open import open_store
from store.writes import apply_commit

SOURCE = "def handler(system, this, inputs):\n    return None\n"


def _blocked_or_done(admin: object, pid: int, thread: threading.Thread) -> None:
    """Until ``thread`` ended or the server shows backend ``pid`` waiting for a lock."""
    while thread.is_alive():
        row = admin.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()  # type: ignore[attr-defined]
        if row and row[0] == "Lock":
            return
        time.sleep(0.01)


def _race(url: str, hold: Callable[[PgConnection], object], decide: Commit) -> str:
    """Run ``hold`` in an open transaction, commit ``decide`` in another meanwhile, then
    commit ``hold``; the status ``decide``'s execution ends up in."""
    import psycopg

    first, second, admin = (psycopg.connect(url, autocommit=True) for _ in range(3))
    try:
        holder = PgConnection(first)
        first.execute("BEGIN")
        hold(holder)
        decider = PgConnection(second)

        def run() -> None:
            second.execute("BEGIN")
            apply_commit(decider, decide, time.time())
            second.execute("COMMIT")

        thread = threading.Thread(target=run)
        thread.start()
        _blocked_or_done(admin, second.info.backend_pid, thread)
        first.execute("COMMIT")
        thread.join(30)
        row = admin.execute("SELECT status FROM executions WHERE id = %s", (decide.execution_id,)).fetchone()
        return str(row[0])
    finally:
        for conn in (first, second, admin):
            conn.close()


def _parent_and_child(url: str) -> tuple[int, int]:
    store = open_store(url)
    try:
        version = store.put_flow("f", SOURCE)
        store.create_execution(NewExecution("p", "f", version, None), time.time())
        (_, fence), = store.claim("w1", 1, 30, time.time())
        child = NewExecution("p.c", "f", version, None, parent_id="p", root_id="p", depth=1)
        result = store.commit(Commit("p", fence, creates=[child], claim=Claim("w2", 30, 1)))
        return fence, result.claimed[0][1]
    finally:
        store.close()


def test_a_child_ending_while_its_parent_starts_to_wait_wakes_the_parent() -> None:
    with fresh_postgres() as url:
        parent_fence, child_fence = _parent_and_child(url)
        end = Commit("p.c", child_fence, status="ENDED_SUCCESS")
        wait = Commit("p", parent_fence, status="WAITING", wait=WaitSpec(["p.c"], 1, False))
        assert _race(url, lambda conn: apply_commit(conn, end, time.time()), wait) == "QUEUED"


def test_an_answer_given_while_its_execution_starts_to_wait_wakes_it() -> None:
    with fresh_postgres() as url:
        store = open_store(url)
        try:
            version = store.put_flow("f", SOURCE)
            store.create_execution(NewExecution("m", "f", version, None), time.time())
            (_, fence), = store.claim("w1", 1, 30, time.time())
            store.commit(Commit("m", fence, messages=[NewMessage("msg1", 1, "question", "ok?", None, True)]))
        finally:
            store.close()
        wait = Commit("m", fence, status="WAITING", wait_message="msg1")
        answer = lambda conn: answer_message(conn, "msg1", {"ok": True}, time.time())  # noqa: E731
        assert _race(url, answer, wait) == "QUEUED"


def test_a_batch_of_step_commits_refuses_only_the_one_whose_lease_was_lost() -> None:
    """The batch path of ``store.pg_batch`` (fence and ``last_seq`` answered from one read)
    keeps each commit's own outcome: a lost lease or a stale ``last_seq`` refuses that
    commit alone, and the others' events are recorded."""
    from store.errors import LeaseLostError
    from store.events import Event, LogRecorded
    from store.postgres import PostgresStore

    with fresh_postgres() as url:
        store = open_store(url)
        assert isinstance(store, PostgresStore)
        try:
            version = store.put_flow("f", SOURCE)
            for eid in ("a", "b", "c"):
                store.create_execution(NewExecution(eid, "f", version, None), time.time())
            fences = dict(store.claim("w1", 3, 30, time.time()))

            base = {eid: store.get_execution(eid).last_seq for eid in fences}  # type: ignore[union-attr]

            def step(eid: str, seq: int, fence: int) -> Commit:
                at = base[eid] + seq
                return Commit(eid, fence, events=[Event(at, time.time(), LogRecorded("INFO", f"{eid}{seq}"))])

            batch = [step("a", 1, fences["a"]), step("b", 1, fences["b"] + 1), step("c", 5, fences["c"])]
            results = store._apply_batch(batch)
            assert [type(r).__name__ for r in results] == ["CommitResult", "LeaseLostError", "LeaseLostError"], results
            assert isinstance(results[1], LeaseLostError)
            assert [len(store.load_events(eid, base[eid])) for eid in ("a", "b", "c")] == [1, 0, 0]
            again = store._apply_batch([step("a", 2, fences["a"]), step("c", 1, fences["c"])])
            assert [type(r).__name__ for r in again] == ["CommitResult", "CommitResult"]
            assert [e.seq - base["a"] for e in store.load_events("a", base["a"])] == [1, 2]
        finally:
            store.close()
