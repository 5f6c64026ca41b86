"""The warm cache (``engine.warm``): a handler parked in memory at its wait goes on
without a replay when woken in the same worker, and the outcome is the one replay from
the log gives; a parked handler that may be stale is discarded, never continued.

The flows write a line to a file outside the log each time their handler starts, so a
test can count how often a handler started: once per execution when the warm path was
taken, once per activation when it replayed.
"""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import Result

from engine import control, warm
from engine.api import Engine
from engine.worker import Worker
from store.events import ChildCreated
from waiting import wait_until

FLOWS = Path(__file__).parent / "flows" / "warm"


@contextmanager
def running(worker: Worker, until: Callable[[], bool] = lambda: False) -> Iterator[threading.Thread]:
    """Run ``worker`` in a thread for the block (stopped at its end)."""
    thread = threading.Thread(target=worker.run, kwargs={"until": until}, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        worker.stop()
        thread.join(30)
    assert not thread.is_alive(), "the worker did not stop"


def starts(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def waiting_message(eng: Engine, eid: str, subject: str) -> str | None:
    """The id of ``eid``'s message ``subject`` once ``eid`` waits for its answer."""
    if eng.get(eid).status != "WAITING":
        return None
    found = [m.id for m in eng.store.list_messages(status="waiting", execution_id=eid) if m.subject == subject]
    return found[0] if found else None


def answer(eng: Engine, eid: str, subject: str, response: dict[str, Any]) -> None:
    wait_until(lambda: waiting_message(eng, eid, subject), f"{eid} to wait for its message {subject!r}")
    message_id = waiting_message(eng, eid, subject)
    assert message_id is not None
    eng.store.answer_message(message_id, response)


def normalised(eng: Engine, eid: str, directory: Path) -> list[tuple[int, str, Any]]:
    """``eid``'s history and its children's, as (seq, kind, body) with ids and times masked."""
    tree, at = [eid], 0
    while at < len(tree):
        tree += [e.body.child_id for e in eng.history(tree[at]) if isinstance(e.body, ChildCreated)]  # in order
        at += 1
    ids = {i: f"<execution {n}>" for n, i in enumerate(tree)}
    ids |= {m.id: f"<message {n}>" for n, m in enumerate(m for i in tree for m in eng.store.list_messages(execution_id=i))}

    def mask(value: Any) -> Any:
        if isinstance(value, float):
            return "<time>"
        if isinstance(value, str):
            for real, name in ids.items():
                value = value.replace(real, name)
            return re.sub(r"\d+\.\d+", "<time>", value.replace(str(directory), "<dir>"))
        if isinstance(value, dict):
            return {mask(k): mask(v) for k, v in value.items() if k != "traceback"}
        if isinstance(value, list):
            return [mask(v) for v in value]
        return value

    return [(e.seq, e.kind, mask(msgspec.to_builtins(e.body))) for i in tree for e in eng.history(i)]


def run_parent(tmp_path: Path, db: str, size: int) -> tuple[list[tuple[int, str, Any]], Any, list[str]]:
    """Run ``warm_parent`` on the fresh database ``db`` with a warm cache of ``size``."""
    directory = tmp_path / f"size-{size}"
    directory.mkdir()
    data = tmp_path / "data.db"  # one path for both runs: the connection's arguments are recorded
    sqlite3.connect(data).close()
    eng = Engine(db, synchronous="NORMAL")
    try:
        eng.sync_flows(FLOWS)
        eid = eng.start("warm_parent", {"starts": str(directory / "starts"), "db": str(data)})
        worker = eng.worker(concurrency=4, warm_cache=size)
        with running(worker, until=lambda: eng.get(eid).ended):
            answer(eng, eid, "approve", {"ok": True})
            wait_until(lambda: eng.get(eid).ended, f"{eid} to end")
        row = eng.get(eid)
        assert (row.status, row.message) == ("ENDED_SUCCESS", "done"), row.message
        return normalised(eng, eid, directory), row.output_value, starts(directory / "starts")
    finally:
        eng.close()


def test_warm_and_cold_give_the_same_histories(tmp_path: Path, make_db: Callable[..., str]) -> None:
    """Children (one fails), a timer, a message, a connection and caught errors: the
    parent and all its children record the same events and outputs, warm or replayed."""
    cold_history, cold_output, cold_starts = run_parent(tmp_path, make_db("cold"), 0)
    warm_history, warm_output, warm_starts = run_parent(tmp_path, make_db("warm"), 8)
    assert warm_history == cold_history
    assert warm_output == cold_output
    assert warm_output["answer"] == {"ok": True} and warm_output["rows"]["rows"] == [{"x": 42}]
    kinds = {kind for _, kind, _ in cold_history}
    assert {"child", "wait", "wait_done", "sleep", "timer_fired", "message", "message_answered", "failed"} <= kinds
    # replayed at each wake-up without the cache (the timer, message, connection at least) ...
    assert len(cold_starts) >= 4
    # ... and started once with it: each wake-up went on from the wait
    assert len(warm_starts) == 1


def test_a_paused_and_resumed_execution_replays_instead_of_going_on(tmp_path: Path, db_url: str) -> None:
    """Pause and resume add markers to the log while the handler is parked: the parked
    handler is stale, so it is discarded and the execution replays from its log."""
    eng = Engine(db_url, synchronous="NORMAL")
    try:
        eng.sync_flows(FLOWS)
        log = tmp_path / "starts"
        eid = eng.start("warm_twice", {"starts": str(log)})
        worker = eng.worker(concurrency=2, warm_cache=8)
        with running(worker, until=lambda: eng.get(eid).ended):
            answer(eng, eid, "first", {"v": 1})
            wait_until(lambda: waiting_message(eng, eid, "second"), f"{eid} to wait for its second message")
            assert len(starts(log)) == 1 and len(worker.warm_cache) == 1  # went on warm from the first message
            control.pause(eng, eid)
            control.resume(eng, eid)
            answer(eng, eid, "second", {"v": 2})
            wait_until(lambda: eng.get(eid).ended, f"{eid} to end")
        row = eng.get(eid)
        assert (row.status, row.output_value) == ("ENDED_SUCCESS", {"got": [1, 2]})
        assert len(starts(log)) == 2  # the stale handler was not continued: the execution replayed
        assert starts(Path(f"{log}.steps")) == ["after-first", "after-second"]  # each step body ran once
        assert [e.kind for e in eng.history(eid)].count("message_answered") == 2
    finally:
        eng.close()


def test_a_handler_parked_here_is_discarded_when_another_process_ran_the_execution(
    tmp_path: Path, db_url: str, spawn: Callable[..., subprocess.Popen[Any]], engine_argv: Callable[..., list[str]],
) -> None:
    """This worker parks the handler at the first message; its only slot is then kept busy,
    so a real ``engine worker`` process claims the execution when the first message is
    answered and runs it to the second. Killed, it leaves the execution waiting; when the
    second answer comes, this worker's claim shows another claim since its handler
    parked and the log moved on: it replays, and the history is the reference one."""
    db = db_url
    eng = Engine(db)
    try:
        eng.sync_flows(FLOWS)
        log, flag = tmp_path / "starts", tmp_path / "flag"
        eid = eng.start("warm_twice", {"starts": str(log)})
        worker = eng.worker(concurrency=1, warm_cache=8)
        with running(worker, until=lambda: eng.get(eid).ended):
            wait_until(lambda: waiting_message(eng, eid, "first"), f"{eid} to wait for its first message")
            assert len(worker.warm_cache) == 1
            blocker = eng.start("warm_blocker", {"flag": str(flag)})
            wait_until(lambda: eng.get(blocker).status == "RUNNING", "the blocker to hold the worker's only slot")

            other = spawn(engine_argv("worker", db=db), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            answer(eng, eid, "first", {"v": 1})
            wait_until(lambda: waiting_message(eng, eid, "second"), "the other worker to run it to its second message", other)
            other.send_signal(signal.SIGKILL)
            other.wait(30)
            assert len(starts(log)) == 2  # the other process replayed it
            assert len(worker.warm_cache) == 1  # this worker's handler is still parked at the first message

            answer(eng, eid, "second", {"v": 2})
            flag.touch()  # the blocker ends: this worker claims the execution
            wait_until(lambda: eng.get(eid).ended, f"{eid} to end")
        row = eng.get(eid)
        assert (row.status, row.output_value) == ("ENDED_SUCCESS", {"got": [1, 2]})
        assert len(starts(log)) == 3  # replayed from the log here, not continued from the first message
        assert starts(Path(f"{log}.steps")) == ["after-first", "after-second"]  # each step body ran once
        assert [e.kind for e in eng.history(eid)].count("message_answered") == 2
    finally:
        eng.close()


def test_the_cache_is_bounded_and_evicted_handlers_record_nothing(tmp_path: Path, db_url: str) -> None:
    """With room for one handler, the first of two parked is discarded when the second
    parks: it unwinds without recording anything, and replays when its answer comes."""
    eng = Engine(db_url, synchronous="NORMAL")
    try:
        eng.sync_flows(FLOWS)
        logs = [tmp_path / "a", tmp_path / "b"]
        first = eng.start("warm_twice", {"starts": str(logs[0])})
        worker = eng.worker(concurrency=2, warm_cache=1)
        with running(worker):
            wait_until(lambda: waiting_message(eng, first, "first"), f"{first} to wait")
            last_seq = eng.get(first).last_seq
            second = eng.start("warm_twice", {"starts": str(logs[1])})
            wait_until(lambda: waiting_message(eng, second, "first"), f"{second} to wait")
            assert len(worker.warm_cache) == 1
            assert eng.get(first).last_seq == last_seq  # the evicted handler recorded nothing
            for eid in (first, second):
                answer(eng, eid, "first", {"v": 1})
                answer(eng, eid, "second", {"v": 2})
                wait_until(lambda: eng.get(eid).ended, f"{eid} to end")
        for eid in (first, second):
            assert (eng.get(eid).status, eng.get(eid).output_value) == ("ENDED_SUCCESS", {"got": [1, 2]})
        assert len(starts(logs[0])) >= 2  # evicted, so replayed
    finally:
        eng.close()


def test_a_cancelled_execution_discards_its_parked_handler(tmp_path: Path, db_url: str) -> None:
    eng = Engine(db_url, synchronous="NORMAL")
    try:
        eng.sync_flows(FLOWS)
        eid = eng.start("warm_twice", {"starts": str(tmp_path / "starts")})
        worker = eng.worker(concurrency=2, warm_cache=8)
        with running(worker):
            wait_until(lambda: waiting_message(eng, eid, "first"), f"{eid} to wait")
            assert len(worker.warm_cache) == 1
            control.cancel(eng, eid)
            wait_until(lambda: len(worker.warm_cache) == 0, "the cancelled execution's handler to be discarded")
        assert eng.get(eid).status == "ENDED_CANCELLED"
        assert eng.history(eid)[-1].kind == "cancelled"  # and nothing recorded after it by the discarded handler
    finally:
        eng.close()


def test_the_cache_size_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, run_cli: Callable[..., Result], engine: Engine
) -> None:
    assert warm.size_from_env({}) == warm.DEFAULT_SIZE
    assert warm.size_from_env({"ENGINE_WARM_CACHE": "0"}) == 0
    monkeypatch.delenv("ENGINE_WARM_CACHE", raising=False)  # the suite also runs with it set to 0
    assert engine.worker().warm_cache.size == warm.DEFAULT_SIZE
    monkeypatch.setenv("ENGINE_WARM_CACHE", "3")
    assert engine.worker().warm_cache.size == 3
    assert engine.worker(warm_cache=0).warm_cache.size == 0
    monkeypatch.setenv("ENGINE_WARM_CACHE", "lots")
    result = run_cli("ls")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: ENGINE_WARM_CACHE='lots' is not a number of handlers to keep parked; "
        "set it to 0 (off) or a positive integer\n"
    )
