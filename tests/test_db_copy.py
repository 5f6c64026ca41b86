"""``engine db copy SRC DST``: executions parked on children, timers and messages by a
real worker on a SQLite file are copied to PostgreSQL (or another SQLite file) and end
there under a worker on the copy; PostgreSQL copies back to SQLite. The copy refuses
while a worker holds a lease and when DST is not empty, and its verification catches a
copy that differs from its source. PostgreSQL tests skip without ENGINE_TEST_POSTGRES_DSN.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from engine.api import Engine
from stores import fresh_postgres
from store.copy import copy_store, verify_copy
from store.errors import StoreError
from waiting import wait_until

CRASH_FLOWS = Path(__file__).parent / "flows" / "crash"

#: Seconds a napper's timer runs: far longer than parking five executions takes (well under
#: a second here), so every timer is still pending when the SQLite worker is stopped.
NAP = 4.0

NAPPER = '''
def handler(system, this, inputs):
    before = this.now()
    this.sleep(inputs["seconds"])
    this.set_output(slept=this.now() - before >= inputs["seconds"], tag=inputs["tag"])
    return this.success("woke up")
'''

ASKER = '''
def handler(system, this, inputs):
    answer = this.message(subject="A word, please", message="Which word?", body={
        "type": "object", "properties": {"word": {"element": "string", "label": "Word", "order": 1}},
        "required": ["word"]})
    this.set_output(word=answer["word"], tag=inputs["tag"])
    return this.success("answered")
'''

PARENT = '''
def handler(system, this, inputs):
    napper = this.flow("napper", wait=False, seconds=inputs["seconds"], tag="child")
    asker = this.flow("asker", wait=False, tag="child")
    this.wait_for(napper, asker)
    this.set_output(word=asker.get("output_value")["word"], slept=napper.get("output_value")["slept"])
    return this.success("children ended")
'''


@contextmanager
def _database(kind: str, tmp_path: Path, name: str) -> Iterator[str]:
    if kind == "sqlite":
        yield str(tmp_path / f"{name}.db")
    else:
        with fresh_postgres() as url:
            yield url


def _park(engine: Engine, spawn, engine_argv, tmp_path: Path) -> dict[str, str]:
    """Executions of every kind of wait, run by a real worker until each waits (then the
    worker is stopped), and one that ended: name -> id."""
    for name, source in (("napper", NAPPER), ("asker", ASKER), ("parent", PARENT)):
        (tmp_path / f"{name}.py").write_text(source)
        engine.register_file(tmp_path / f"{name}.py")
    ids = {
        "done": engine.start("napper", {"seconds": 0, "tag": "done"}),
        "parent": engine.start("parent", {"seconds": NAP}),
        "napper": engine.start("napper", {"seconds": NAP, "tag": "alone"}),
        "asker": engine.start("asker", {"tag": "alone"}),
    }
    with open(tmp_path / "sqlite-worker.log", "wb") as log:
        worker = spawn(engine_argv("worker"), stdout=log, stderr=subprocess.STDOUT)
    wait_until(lambda: len(engine.store.children(ids["parent"])) == 2, "the parent to start its children", worker)
    for child in engine.store.children(ids["parent"]):
        ids["child " + child.flow] = child.id
    wait_until(lambda: engine.get(ids["done"]).status == "ENDED_SUCCESS"
               and all(engine.get(eid).status == "WAITING" for key, eid in ids.items() if key != "done"),
               "every execution to park", worker)
    worker.send_signal(signal.SIGINT)
    assert worker.wait(timeout=60) in (0, 130), (tmp_path / "sqlite-worker.log").read_text()
    return ids


def _snapshot(engine: Engine, ids: dict[str, str]) -> dict[str, tuple[Any, ...]]:
    return {key: (row.status, row.fence, row.last_seq, row.wake_at, [(e.seq, e.kind) for e in engine.history(eid)])
            for key, eid in ids.items() for row in [engine.get(eid)]}


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
def test_executions_waiting_on_children_timers_and_messages_end_in_the_copy(
        kind, engine, db_url, run_cli, spawn, engine_argv, tmp_path, monkeypatch):
    monkeypatch.setattr("store.copy_ends.BATCH", 3)  # every table of more than 3 rows is streamed in batches
    ids = _park(engine, spawn, engine_argv, tmp_path)
    before = _snapshot(engine, ids)
    with _database(kind, tmp_path, "copy") as dst:
        copied = run_cli("db", "copy", db_url, dst, "--json")
        assert copied.exit_code == 0, copied.stderr
        report = json.loads(copied.stdout)
        assert report["verified"] is True
        assert report["copied"]["executions"] == 6 and report["copied"]["messages"] == 2
        assert report["copied"]["waits"] == 1 and report["copied"]["flow_versions"] == 3

        moved = Engine(dst)
        try:
            after = _snapshot(moved, ids)
            for key, (status, fence, last_seq, wake_at, log) in before.items():
                assert after[key][:3] == (status, fence, last_seq) and after[key][4] == log, key
                if wake_at is not None:  # timers moved between clocks of one host: the same instant
                    assert abs(after[key][3] - wake_at) < 1.0, key
            waiting = moved.store.list_messages(status="waiting")
            assert len(waiting) == 2
            for message in waiting:
                answered = run_cli("messages", "respond", message.id, "-f", f"word=w-{message.execution_id}", db=dst)
                assert answered.exit_code == 0, answered.stderr
            with open(tmp_path / "copy-worker.log", "wb") as log:
                worker = spawn(engine_argv("worker", "--until-idle", db=dst), stdout=log, stderr=subprocess.STDOUT)
            assert worker.wait(timeout=120) == 0, (tmp_path / "copy-worker.log").read_text()
            outputs = {key: moved.get(eid) for key, eid in ids.items()}
            assert {key: row.status for key, row in outputs.items()} == dict.fromkeys(ids, "ENDED_SUCCESS")
            assert outputs["parent"].output_value == {"word": f"w-{ids['child asker']}", "slept": True}
            assert outputs["napper"].output_value == {"slept": True, "tag": "alone"}
            assert outputs["asker"].output_value == {"word": f"w-{ids['asker']}", "tag": "alone"}
            for key, (_, _, last_seq, _, log) in before.items():  # the log went on where SQLite left it
                assert [(e.seq, e.kind) for e in moved.history(ids[key])][:last_seq] == log
        finally:
            moved.close()
        assert {key: row[:3] for key, row in _snapshot(engine, ids).items()} == {k: v[:3] for k, v in before.items()}

        if kind == "postgres":  # and back to a new SQLite file
            back = str(tmp_path / "back.db")
            copied_back = run_cli("db", "copy", dst, back)
            assert copied_back.exit_code == 0, copied_back.stderr
            assert copied_back.stdout.startswith("copied 3 flows (3 versions), 6 executions, ")
            assert copied_back.stdout.rstrip().endswith(f"from {dst} to {back}; verified")
            listed = run_cli("ls", "--json", db=back)
            assert sorted(e["status"] for e in json.loads(listed.stdout)) == ["ENDED_SUCCESS"] * 6


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_copy_is_refused_while_a_worker_holds_a_lease(kind, run_cli, spawn, engine_argv, counter, tmp_path):
    with _database(kind, tmp_path, "src") as src, _database("sqlite", tmp_path, "dst") as dst:
        release = tmp_path / "release"
        started = run_cli("run", str(CRASH_FLOWS / "blocking.py"), "-i", f"before={tmp_path / 'before'}",
                          "-i", f"started={tmp_path / 'started'}", "-i", f"release={release}", "--detach", db=src)
        assert started.exit_code == 0, started.stderr
        eid = started.stdout.strip()
        with open(tmp_path / "worker.log", "wb") as log:
            worker = spawn(engine_argv("worker", "--lease", "60", db=src), stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: counter(tmp_path / "started") == 1, "the step to start", worker)
        refused = run_cli("db", "copy", src, dst)
        assert refused.exit_code == 1
        [line] = refused.stderr.strip().splitlines()
        owner = Engine(src)
        try:
            assert f"{eid} (worker {owner.get(eid).lease_owner})" in line and "stop every worker" in line, line
        finally:
            owner.close()
        assert sqlite3.connect(dst).execute("SELECT count(*) FROM executions").fetchone() == (0,)
        release.write_text("go")
        worker.send_signal(signal.SIGINT)
        assert worker.wait(timeout=60) in (0, 130)
        copied = run_cli("db", "copy", src, dst)  # the lease is handed back or the execution ended: at rest
        assert copied.exit_code == 0, copied.stderr


def test_a_copy_into_a_database_that_is_not_empty_is_refused(engine, db_url, run_cli, tmp_path):
    (tmp_path / "napper.py").write_text(NAPPER)
    engine.register_file(tmp_path / "napper.py")
    engine.start("napper", {"seconds": 0, "tag": "x"})
    dst = str(tmp_path / "dst.db")
    assert run_cli("db", "copy", db_url, dst).exit_code == 0
    again = run_cli("db", "copy", db_url, dst)
    assert again.exit_code == 1
    assert again.stderr.strip() == (f"Error: cannot copy into {dst}: it is not empty (it holds flows, flow_versions, "
                                    "executions, events); copy into a new, empty database (a new file path, or one made "
                                    "with createdb)")
    onto_itself = run_cli("db", "copy", db_url, db_url)
    assert onto_itself.exit_code == 1 and "onto itself" in onto_itself.stderr
    missing = run_cli("db", "copy", str(tmp_path / "nothing.db"), str(tmp_path / "new.db"))
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    assert not (tmp_path / "nothing.db").exists() and not (tmp_path / "new.db").exists()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_verification_catches_a_copy_that_differs(kind, engine, db_url, tmp_path):
    (tmp_path / "napper.py").write_text(NAPPER)
    engine.register_file(tmp_path / "napper.py")
    eid = engine.start("napper", {"seconds": 0, "tag": "x"})
    with _database(kind, tmp_path, "dst") as dst:
        secret = dst.replace("postgres@", "postgres:hunter2@") if kind == "postgres" else dst
        report = copy_store(db_url, secret)
        assert "hunter2" not in report.summary() and report.verified
        verify_copy(db_url, dst)  # as copied: the same
        tampered = Engine(dst)
        try:
            tampered.store.transaction(lambda conn: conn.execute(
                "UPDATE events SET body = ? WHERE execution_id = ? AND seq = 1", (b"\x80", eid)))
        finally:
            tampered.close()
        with pytest.raises(StoreError) as caught:
            verify_copy(db_url, secret)
        message = str(caught.value)
        assert f"the event log of execution {eid} differs: 1 events with digest " in message
        assert "\n" not in message and "hunter2" not in message and message.endswith("copy again")


def test_a_worker_that_starts_during_a_copy_waits_for_it(engine_argv, spawn, tmp_path, monkeypatch):
    """A worker started while the copy runs blocks on SRC's lock (seen in pg_locks), so
    the copy holds the execution as it was; the worker runs it once the copy is done."""
    import store.copy

    with fresh_postgres() as src:
        source = Engine(src)
        try:
            (tmp_path / "napper.py").write_text(NAPPER)
            source.register_file(tmp_path / "napper.py")
            eid = source.start("napper", {"seconds": 0, "tag": "meanwhile"})
            copy_table, workers = store.copy._copy_table, []

            def blocked() -> bool:
                return bool(source.store.read(lambda conn: conn.execute(
                    "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                    "WHERE NOT l.granted AND d.datname = current_database()").fetchone()[0]))

            def start_a_worker_first(*args: Any) -> int:
                if not workers:
                    with open(tmp_path / "worker.log", "wb") as log:
                        workers.append(spawn(engine_argv("worker", "--until-idle", db=src), stdout=log,
                                             stderr=subprocess.STDOUT))
                    wait_until(blocked, "the worker to wait for the copy's lock", workers[0])
                return copy_table(*args)

            monkeypatch.setattr(store.copy, "_copy_table", start_a_worker_first)
            report = copy_store(src, str(tmp_path / "copy.db"))
            assert report.verified and report.copied["executions"] == 1
            assert workers[0].wait(timeout=120) == 0, (tmp_path / "worker.log").read_text()
            assert source.get(eid).status == "ENDED_SUCCESS"
        finally:
            source.close()
    copied = Engine(str(tmp_path / "copy.db"))
    try:
        assert (copied.get(eid).status, copied.get(eid).fence, len(copied.history(eid))) == ("QUEUED", 0, 1)
    finally:
        copied.close()
