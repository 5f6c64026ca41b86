"""Fairness: running trees go first, writers queue in order, a step body never runs on a lost lease.

Everything here is ordering and counting: which executions ended before which, in which
order three processes got the write lock, how often a step body ran.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.api import Engine
from store.model import Commit, CommitResult
from stores import no_write_in_progress
from waiting import wait_until

PARENT = '''
def handler(system, this, inputs):
    child = this.flow("fair_leaf", n=-1)
    this.set_output(child=child.get("output_value"))
'''

LEAF = '''
def handler(system, this, inputs):
    this.set_output(n=inputs["n"])
'''


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_child_of_a_running_parent_runs_before_a_backlog_of_new_executions(
    engine: Engine, concurrency: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.register_flow("fair_parent", PARENT)
    engine.register_flow("fair_leaf", LEAF)
    # When the commit creating the child returned: the child exists for every claim after.
    # (Its created_at is the handler's call, which the commit may follow by a millisecond
    # in which the other slots finish and claim new executions that cannot see it yet.)
    child_committed: list[float] = []
    commit = engine.store.commit

    def recording(c: Commit) -> CommitResult:
        result = commit(c)
        if c.creates:
            child_committed.append(time.time())
        return result

    monkeypatch.setattr(engine.store, "commit", recording)
    parent = engine.start("fair_parent")  # claimed first: it was created first
    backlog = [engine.start("fair_leaf", {"n": n}) for n in range(200)]
    worker = engine.worker(concurrency=concurrency, lease_seconds=30)
    worker.run(until=lambda: engine.get(parent).ended)

    row = engine.get(parent)
    assert (row.status, row.output_value) == ("ENDED_SUCCESS", {"child": {"n": -1}})
    (child,) = engine.store.children(parent)
    (existed,) = child_committed
    # once the child existed, the next claim took it: no new execution was claimed before it
    # (a claim under way when the child was committed may not have seen it yet)
    overtook = [b for b in map(engine.get, backlog) if existed < (b.started_at or 0) < child.started_at]
    assert len(overtook) <= concurrency, f"{len(overtook)} of {len(backlog)} new executions were claimed first"


def blocked_flock_waiters(lock_path: str) -> int:
    """How many processes wait in the kernel for the flock on ``lock_path`` (from /proc/locks)."""
    inode = str(os.stat(lock_path).st_ino)
    lines = Path("/proc/locks").read_text().splitlines()
    return sum(1 for line in lines if "-> FLOCK" in line and line.split()[6].split(":")[-1] == inode)


WRITE_SETTING = """
import sys
from store.model import SettingWrite
from store.sqlite import SqliteStore
SqliteStore(sys.argv[1]).save_setting(SettingWrite(sys.argv[2], 1))
"""


@pytest.mark.sqlite_only("the order in which processes queue on the SQLite store's file lock")
@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks to see who waits")
def test_writers_of_several_processes_get_the_write_lock_in_the_order_they_asked(engine: Engine, db_file: str):
    holding, release = threading.Event(), threading.Event()

    def hold(_conn: sqlite3.Connection) -> None:
        holding.set()
        release.wait(60)

    holder = threading.Thread(target=engine.store.transaction, args=(hold,))
    holder.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        assert holding.wait(60), "the holder never got the write lock"
        lock_path = db_file + "-lock"
        for name in ("first", "second", "third", "fourth"):
            procs.append(subprocess.Popen([sys.executable, "-c", WRITE_SETTING, db_file, name]))
            count = len(procs)
            wait_until(lambda: blocked_flock_waiters(lock_path) == count, f"writer {name!r} queueing for the lock")
    finally:
        release.set()
        holder.join()
        for proc in procs:
            assert proc.wait(timeout=60) == 0
    with sqlite3.connect(db_file) as conn:
        order = [r[0] for r in conn.execute("SELECT name FROM settings ORDER BY rowid")]
    assert order == ["first", "second", "third", "fourth"]


LEASE_FLOW = '''
import os
import time


def touch(path):
    with open(path, "a") as f:
        f.write("x")
    return os.path.getsize(path)


def handler(system, this, inputs):
    try:
        this.step(touch, inputs["first"])
        open(inputs["ready"], "a").close()
        while not os.path.exists(inputs["go"]):  # the test freezes this worker meanwhile
            time.sleep(0.01)
        this.step(touch, inputs["second"])
        return this.success("done")
    finally:
        with open(inputs["ends"], "a") as f:
            f.write("x")
'''


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def test_a_step_body_does_not_run_once_the_lease_was_taken_over(engine: Engine, engine_argv, db_url, tmp_path):
    """A worker frozen past its 1 s lease (as a long wait for the write lock would) must not
    run the next step body after it wakes: another worker holds the execution by then."""
    files = {name: tmp_path / name for name in ("first", "second", "ready", "go", "ends")}
    engine.register_flow("lease_check", LEASE_FLOW)
    eid = engine.start("lease_check", {k: str(v) for k, v in files.items()})
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen(engine_argv("worker", "--lease", "1"), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(files["ready"].exists, "the first activation reaching its second step")
        freeze_outside_a_write(worker, db_url)
        try:
            wait_until(lambda: (engine.get(eid).lease_expires or 0) < time.time(), "the frozen worker's lease expiring")
            taken = engine.store.claim("another-worker", 1, 3600, time.time())  # its lease holds while the test runs
            assert [t[0] for t in taken] == [eid]
            files["go"].touch()
        finally:
            worker.send_signal(signal.SIGCONT)
        wait_until(lambda: size(files["ends"]) == 1, "the first activation ending")
        assert size(files["second"]) == 0, "the step body ran although another worker held the execution"

        engine.store.release_leases(taken)  # the other worker hands it back: the first one runs it
        wait_until(lambda: engine.get(eid).ended, "the execution ending")
    finally:
        worker.kill()
        worker.wait()
    assert engine.get(eid).status == "ENDED_SUCCESS"
    assert (size(files["first"]), size(files["second"])) == (1, 1)  # each body ran once
    assert "before a step body could run" in (tmp_path / "worker.log").read_text()


def freeze_outside_a_write(proc: subprocess.Popen[bytes], db_url: str) -> None:
    """SIGSTOP ``proc`` at a moment it is not writing (a frozen writer would block the
    test's own writes)."""
    while True:
        proc.send_signal(signal.SIGSTOP)
        wait_until(lambda: Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T",
                   f"worker {proc.pid} stopping")
        if no_write_in_progress(db_url):
            return
        proc.send_signal(signal.SIGCONT)
        time.sleep(0.005)
