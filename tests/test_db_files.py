"""The database's files (and the folder of wake-up notices): created owner-only; backed up
online while a worker writes (and the copy checked); and a worker that notices its file
was replaced or its WAL deleted stops at once instead of writing events nobody will read.
(``engine db check`` on either store: tests/test_db_check.py.)

Real worker processes on real SQLite files; faults are scheduled by progress (after a
share of the executions ended), never by the clock.
"""

from __future__ import annotations

import os
import stat
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from engine.api import Engine
from stores import run_sql
from waiting import wait_until

FLOW = Path(__file__).parent / "flows" / "dbfiles" / "few_steps.py"
COUNT = 120


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def ended(db_url: str) -> int:
    """How many executions have ended, read the way another process would."""
    return int(run_sql(db_url, "SELECT count(*) FROM executions WHERE status LIKE 'ENDED_%'")[0][0])


@pytest.fixture
def queued(engine: Engine) -> list[str]:
    """COUNT executions of few_steps, QUEUED, for a worker process to run."""
    engine.register_file(FLOW)
    return [engine.start("few_steps", {"steps": 4}) for _ in range(COUNT)]


@pytest.fixture
def worker(engine_argv, spawn):
    """``worker(*args)``: a real ``engine worker`` process (stderr piped); killed at teardown."""
    return lambda *args: spawn(engine_argv("worker", "--concurrency", "4", *args),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.sqlite_only("the permissions of the default SQLite file, its WAL, shm and lock files")
def test_the_database_its_wal_shm_and_folder_are_owner_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ENGINE_DB", raising=False)
    old = os.umask(0o022)  # the usual umask would leave them readable by everyone
    try:
        engine = Engine()
    finally:
        os.umask(old)
    try:
        engine.register_file(FLOW)
        assert engine.run_until_ended(engine.start("few_steps", {})).status == "ENDED_SUCCESS"
        folder = tmp_path / ".engine"
        files = sorted(p.name for p in folder.iterdir() if p.is_file())
        assert files == ["engine.db", "engine.db-lock", "engine.db-shm", "engine.db-wal"]
        assert {name: mode(folder / name) for name in files} == dict.fromkeys(files, 0o600)
        wake = folder / "engine.db-wake"  # names the threads listening for wake-up notices
        assert [p.name for p in folder.iterdir() if p.is_dir()] == [wake.name]
        engine.store.wait_for_change(0)  # this thread listens too, until the engine closes
        modes = {}
        for p in wake.iterdir():
            try:
                modes[p.name] = mode(p)
            except FileNotFoundError:  # its thread ended (run_until_ended's) since the listing
                pass
        assert modes and set(modes.values()) == {0o600}
        assert mode(folder) == mode(wake) == 0o700
    finally:
        engine.close()


@pytest.mark.sqlite_only("engine db backup writes a SQLite file")
def test_a_backup_taken_while_a_worker_runs_is_a_consistent_moment(engine, queued, worker, run_cli, db_file, tmp_path):
    proc = worker()  # runs until stopped, so it is running during the backup
    wait_until(lambda: ended(db_file) >= COUNT // 3, "a third of the executions ended", proc)
    copy = tmp_path / "backup" / "copy.db"
    copy.parent.mkdir()
    result = run_cli("db", "backup", str(copy))
    assert result.exit_code == 0, result.output
    live = run_cli("db", "check")  # one snapshot of a database being written
    assert live.exit_code == 0, live.output
    wait_until(lambda: ended(db_file) == COUNT, "every execution ended", proc)
    proc.terminate()
    proc.wait()

    assert mode(copy) == 0o600
    assert sorted(p.name for p in copy.parent.iterdir()) == ["copy.db"]  # one file, nothing beside it
    checked = run_cli("db", "check", db=str(copy))
    assert (checked.exit_code, checked.stdout) == (0, f"database {copy}: ok\n")
    with closing(Engine(copy)) as backup:
        rows = {row.id: row for row in backup.store.list_executions()}
        assert set(rows) == set(queued)
        assert sum(r.ended for r in rows.values()) >= COUNT // 3
        for execution_id in queued:  # each log in the copy is a prefix of the final log
            then, now = backup.store.load_events(execution_id), engine.store.load_events(execution_id)
            assert then == now[: len(then)]
    assert run_cli("db", "check").exit_code == 0


@pytest.mark.sqlite_only("replaces the SQLite file or deletes its WAL under a worker")
@pytest.mark.parametrize("fault", ["replace the database", "delete the WAL"])
def test_a_worker_stops_when_its_database_file_is_replaced_or_its_wal_deleted(
    engine, queued, worker, db_file, tmp_path, fault
):
    other = tmp_path / "other.db"
    Engine(other).close()  # an engine database of its own, as a restored copy would be
    proc = worker()
    wait_until(lambda: ended(db_file) >= COUNT // 3, "a third of the executions ended", proc)
    if fault == "replace the database":
        os.replace(other, db_file)
    else:
        os.unlink(db_file + "-wal")
    assert proc.wait(timeout=60) != 0
    error = (proc.stderr.read() if proc.stderr else "").splitlines()[-1]
    # a deleted -wal may already be back, made anew by another connection of the worker: "replaced" then
    what = ("was replaced by another file",) if fault == "replace the database" else ("-wal was deleted", "-wal was replaced")
    assert error.startswith("Error: ") and any(w in error for w in what) and "stopped without writing more" in error
