"""The engine end to end on PostgreSQL: `engine run`, real `engine worker` processes
sharing one database, a worker SIGKILLed and its lease taken over, a message answered
from another process, and LISTEN/NOTIFY waking an idle worker.

Every test gets a fresh PostgreSQL database (``db_url`` is overridden here, so the
shared fixtures ``run_cli``, ``engine``, ``engine_argv`` and ``show`` all use it);
without ENGINE_TEST_POSTGRES_DSN the tests skip, saying so.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from stores import fresh_postgres
from waiting import wait_until

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CRASH_FLOWS = Path(__file__).parent / "flows" / "crash"

COUNTED = '''
import json
import os


def note(folder, execution_id):
    """Append one line to the execution's file: how often this step body really ran."""
    with open(os.path.join(folder, execution_id), "a") as f:
        f.write(f"{os.getpid()}\\n")
    return os.getpid()


def handler(system, this, inputs):
    pid = this.step(note, inputs["folder"], this.id)
    this.set_output(n=inputs["n"], pid=pid)
    return this.success("counted")
'''


@pytest.fixture
def db_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test (with the engine's tables), dropped afterwards."""
    with fresh_postgres() as url:
        yield url


@pytest.fixture
def empty_db_url() -> Iterator[str]:
    """A fresh PostgreSQL database without the engine's tables, dropped afterwards."""
    with fresh_postgres(empty=True) as url:
        yield url


def _worker(spawn, engine_argv, tmp_path: Path, name: str, *args: str, env: dict[str, str] | None = None):
    with open(tmp_path / f"{name}.log", "wb") as log:
        return spawn(engine_argv("worker", *args), stdout=log, stderr=subprocess.STDOUT,
                     env={**os.environ, **(env or {})})


def _listeners(engine) -> int:
    """Connections to this database that LISTEN for changes (one per store that waited for one)."""
    return int(engine.store.read(lambda conn: conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'"
    ).fetchone()[0]))


def test_engine_run_of_examples(run_cli, monkeypatch):
    monkeypatch.chdir(EXAMPLES / "fanout")
    fanout = run_cli("run", "parent.py", "--json")
    assert fanout.exit_code == 0, fanout.stderr
    waited = run_cli("run", str(EXAMPLES / "seed" / "wait_for_multiple.py"))
    assert waited.exit_code == 0, waited.stderr
    assert "ENDED_SUCCESS" in waited.stdout
    listed = run_cli("ls", "--json")
    assert listed.exit_code == 0 and '"ENDED_SUCCESS"' in listed.stdout


def test_two_worker_processes_end_every_execution_exactly_once(engine, engine_argv, spawn, tmp_path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "counted.py").write_text(COUNTED)
    (tmp_path / "notes").mkdir()
    engine.register_file(tmp_path / "flows" / "counted.py")
    ids = [engine.start("counted", {"folder": str(tmp_path / "notes"), "n": n}) for n in range(100)]
    workers = [_worker(spawn, engine_argv, tmp_path, f"w{i}", "--until-idle", "--lease", "5") for i in range(2)]
    for proc in workers:
        assert proc.wait(timeout=240) == 0, (tmp_path / "w0.log").read_text()
    pids = set()
    for n, eid in enumerate(ids):
        row = engine.get(eid)
        assert (row.status, row.output_value["n"]) == ("ENDED_SUCCESS", n)
        assert [e.kind for e in engine.history(eid)].count("ended") == 1
        runs = (tmp_path / "notes" / eid).read_text().split()
        assert len(runs) == 1  # the step body ran once: no execution ran in both workers
        pids.add(runs[0])
    assert pids <= {str(p.pid) for p in workers}


def test_a_killed_workers_lease_is_taken_over(run_cli, engine, engine_argv, spawn, counter, tmp_path):
    release = tmp_path / "release"
    started = run_cli("run", str(CRASH_FLOWS / "blocking.py"), "-i", f"before={tmp_path / 'before'}",
                      "-i", f"started={tmp_path / 'started'}", "-i", f"release={release}", "--detach")
    assert started.exit_code == 0, started.stderr
    eid = started.stdout.strip()
    first = _worker(spawn, engine_argv, tmp_path, "first", "--lease", "1")
    wait_until(lambda: counter(tmp_path / "started") == 1, "the step body to start", first)
    owner = engine.get(eid).lease_owner
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL
    release.write_text("go")
    second = _worker(spawn, engine_argv, tmp_path, "second", "--lease", "1", "--until-idle")
    assert second.wait(timeout=120) == 0, (tmp_path / "second.log").read_text()
    row = engine.get(eid)
    assert (row.status, row.message) == ("ENDED_SUCCESS", "released")
    assert row.lease_owner is None and owner is not None
    assert counter(tmp_path / "before") == 1 and counter(tmp_path / "started") == 2
    blocks = [e.body for e in engine.history(eid) if e.kind == "step" and e.body.name == "block"]
    assert [b.result for b in blocks] == [{"attempt": 2}]


def test_an_answer_from_another_process_wakes_the_execution(run_cli, engine, engine_argv, spawn, tmp_path):
    started = run_cli("run", str(EXAMPLES / "seed" / "approval.py"), "-i", "amount=250", "--detach")
    assert started.exit_code == 0, started.stderr
    eid = started.stdout.strip()
    worker = _worker(spawn, engine_argv, tmp_path, "w", env={"ENGINE_PG_SWEEP_SECONDS": "600"})
    wait_until(lambda: engine.get(eid).status == "WAITING", "the execution to wait for its answer", worker)
    [message] = engine.store.list_messages(execution_id=eid)
    answered = subprocess.run(
        engine_argv("messages", "respond", message.id, "-f", "approve=true", "-f", "comment=fine"),
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert answered.returncode == 0, answered.stderr
    wait_until(lambda: engine.get(eid).ended, "the answered execution to end", worker)
    assert engine.get(eid).status == "ENDED_SUCCESS"


def test_an_idle_worker_is_woken_by_notify_not_by_the_sweep(engine, engine_argv, spawn, tmp_path):
    """With the safety-net sweep at 10 minutes, each of five executions created one after
    another by this process (after the worker went idle) can only start that soon if the
    NOTIFY of its creation woke the worker: the hang guard is far below the sweep."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "counted.py").write_text(COUNTED)
    (tmp_path / "notes").mkdir()
    engine.register_file(tmp_path / "flows" / "counted.py")
    worker = _worker(spawn, engine_argv, tmp_path, "w", "--poll", "0.05", env={"ENGINE_PG_SWEEP_SECONDS": "600"})
    wait_until(lambda: _listeners(engine) >= 1, "the worker to listen (this process only writes)", worker)
    for n in range(5):
        eid = engine.start("counted", {"folder": str(tmp_path / "notes"), "n": n})
        wait_until(lambda: engine.get(eid).ended, f"execution {n} to be picked up by the idle worker", worker, guard=60)
        assert engine.get(eid).status == "ENDED_SUCCESS"
    assert len(os.listdir(tmp_path / "notes")) == 5


def _shape(value: object) -> object:
    """``value`` with every leaf replaced by its type name and id-like keys by ``<id>``:
    what a script reading the JSON relies on, without the ids and times of one run."""
    if isinstance(value, dict):
        return {("<id>" if len(k) == 16 and all(c in "0123456789abcdef" for c in k) else k): _shape(v)
                for k, v in value.items()}
    if isinstance(value, list):
        shapes = []
        for item in map(_shape, value):
            if item not in shapes:
                shapes.append(item)
        return shapes
    return "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__


def _cli_outputs(run_cli, db: str, monkeypatch) -> dict[str, object]:
    """What the CLI prints for one scenario on database ``db``: JSON as shapes, text as
    its exit code and first word."""
    monkeypatch.chdir(EXAMPLES / "fanout")

    def json_of(*args: str) -> object:
        result = run_cli(*args, "--json", db=db)
        assert result.exit_code == 0, (args, result.stderr)
        return _shape(json.loads(result.stdout))

    def text_of(*args: str) -> tuple[int, str]:
        result = run_cli(*args, db=db)
        return result.exit_code, (result.stdout.split() or [""])[0]

    out: dict[str, object] = {"run": json_of("run", "parent.py")}
    parent = next(r["id"] for r in json.loads(run_cli("ls", "--json", db=db).stdout) if r["flow"] == "parent")
    child = next(r["id"] for r in json.loads(run_cli("ls", "--json", db=db).stdout) if r["flow"] == "fanout_child")
    detached = run_cli("run", str(EXAMPLES / "seed" / "approval.py"), "--detach", db=db)
    assert detached.exit_code == 0, detached.stderr
    assert run_cli("worker", "--until-idle", db=db).exit_code == 0
    assert run_cli("connectors", "set", "api", "--type", "REST", "-v", "url=http://127.0.0.1:1", db=db).exit_code == 0
    out |= {
        "ls": json_of("ls"), "show": json_of("show", parent), "history": json_of("history", parent),
        "tree": json_of("tree", child), "deps": json_of("deps", parent), "logs": json_of("logs", child),
        "messages": json_of("messages", "ls"), "connectors": json_of("connectors", "ls"),
        "connector": text_of("connectors", "show", "api"), "flows": json_of("flows", "ls"),
        "fork": json_of("fork", parent, "--at", "3", "--wait"),
        "replay": text_of("replay", parent), "check": text_of("check", "parent.py"),
        "statuses": sorted(r["status"] for r in json.loads(run_cli("ls", "--json", db=db).stdout)),
        "kinds": [e["kind"] for e in json.loads(run_cli("history", parent, "--json", db=db).stdout)],
    }
    return out


def test_the_cli_prints_the_same_shapes_on_both_stores(run_cli, db_url, tmp_path, monkeypatch):
    on_sqlite = _cli_outputs(run_cli, str(tmp_path / "engine.db"), monkeypatch)
    on_postgres = _cli_outputs(run_cli, db_url, monkeypatch)
    for key, value in on_sqlite.items():
        assert on_postgres[key] == value, key
    assert on_postgres["replay"] == (0, "consistent:")


def test_processes_opening_a_new_database_at_once_create_it_once(engine_argv, empty_db_url):
    procs = [subprocess.Popen(engine_argv("ls", "--json", db=empty_db_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outcomes = [(proc.wait(timeout=120), proc.stderr.read()) for proc in procs]
    assert outcomes == [(0, "")] * 4
    for proc in procs:
        assert json.loads(proc.stdout.read()) == []
        proc.stdout.close()
        proc.stderr.close()


def test_a_store_opens_a_connection_to_write_or_listen_only_when_it_does(db_url):
    """A command that only reads (``engine ls``) costs one connection, not three."""
    from store.model import SettingWrite
    from store.open import open_store

    store = open_store(db_url)
    sessions = lambda: store.read(lambda conn: conn.execute(  # noqa: E731
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()").fetchone()[0])
    try:
        assert sessions() == 1  # the reader asking
        store.save_setting(SettingWrite("s", 1))
        assert sessions() == 2  # and the writer
        assert store.wait_for_change(0)
        assert sessions() == 3  # and the listener
    finally:
        store.close()


def test_every_session_asks_the_server_to_notice_a_lost_host_in_seconds(db_url):
    """The reading and the writing session (all are opened alike) carry the keepalive and
    user-timeout settings that release a lost host's row locks in seconds (the server of
    tests/test_many_hosts.py, which loses a host, keeps PostgreSQL's defaults); ``options``
    in the URL still win."""
    from store.open import open_store

    query = ("SELECT name, setting FROM pg_settings WHERE name IN "
             "('tcp_keepalives_idle', 'tcp_keepalives_interval', 'tcp_keepalives_count', 'tcp_user_timeout')")
    ours = {"tcp_keepalives_count": "3", "tcp_keepalives_idle": "2", "tcp_keepalives_interval": "1",
            "tcp_user_timeout": "5000"}
    store = open_store(db_url)
    try:
        assert dict(store.read(lambda conn: conn.execute(query).fetchall())) == ours
        assert dict(store.transaction(lambda conn: conn.execute(query).fetchall())) == ours
    finally:
        store.close()
    store = open_store(db_url + ("&" if "?" in db_url else "?") + "options=-c%20tcp_keepalives_idle%3D7")
    try:
        assert dict(store.read(lambda conn: conn.execute(query).fetchall())) == {**ours, "tcp_keepalives_idle": "7"}
    finally:
        store.close()


def test_connections_cut_by_the_server_fail_one_operation_in_one_line_then_recover(db_url):
    from store.errors import StoreError
    from store.model import SettingWrite
    from store.open import open_store

    store = open_store(db_url)
    try:
        store.save_setting(SettingWrite("s", 1))
        assert store.get_setting("s") == (1, None)
        assert store.wait_for_change(0)
        psycopg = pytest.importorskip("psycopg")
        with psycopg.connect(os.environ["ENGINE_TEST_POSTGRES_DSN"], autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                          (db_url.rsplit("/", 1)[1],))
        failures = []
        for attempt in (lambda: store.get_setting("s"), lambda: store.save_setting(SettingWrite("s", 2))):
            try:
                attempt()
            except StoreError as exc:
                failures.append(str(exc))
        assert all("\n" not in f and db_url in f for f in failures)
        store.save_setting(SettingWrite("s", 3))
        assert store.get_setting("s") == (3, None)
        wait_until(lambda: store.wait_for_change(0), "the listening connection to be re-opened", guard=30)
    finally:
        store.close()
