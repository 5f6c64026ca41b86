"""Hostile and broken input: each case ends in one clear line, no worker crash loop, and
nothing that was recorded before it is lost.

The flows live in ``tests/flows/hostile/``. ``recorded`` runs the well-behaved ``ok`` flow
before the hostile input and checks afterwards that its row and its event log are
byte-for-byte what they were. CLI cases assert the single line the command prints on
stderr (``engine run`` prints the failed execution's line there; other commands print
``Error: ...``) and that no traceback escaped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from engine.commands import children
from engine.api import Engine
from engine.errors import MAX_TEXT, EngineError
from store.events import CommandFailed, ExecutionEnded, encode_body
from store.schema import SCHEMA_VERSION
from store.sqlite import SqliteStore
from store.values import MAX_VALUE_BYTES
from waiting import wait_until

HOSTILE = Path(__file__).parent / "flows" / "hostile"
MB50 = 50 * 1024 * 1024
LIMIT_TEXT = f"exceeds the {MAX_VALUE_BYTES // 2**20} MiB limit"


# -- helpers -------------------------------------------------------------------------------


def engine_process(engine_argv, *args: str, db: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real ``engine`` command in a child process (the deadline only stops a hang)."""
    return subprocess.run(engine_argv(*args, db=db), capture_output=True, text=True, timeout=timeout, check=False)


def line_of(flow: str, text: str) -> int:
    """The line of ``tests/flows/hostile/FLOW.py`` that contains ``text``."""
    lines = (HOSTILE / f"{flow}.py").read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line)


def one_line(stderr: str) -> str:
    """The only line on stderr; no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].strip(), stderr[:2000]
    return lines[0]


def last_line(stderr: str) -> str:
    """The final ``Error: ...`` line of a process that also logged on its way there."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert lines and lines[-1].startswith("Error: "), stderr[:2000]
    return lines[-1]


def failed_run(result: Any) -> tuple[str, str]:
    """``engine run`` of an execution that ended badly: (its id, its one line)."""
    assert result.exit_code == 1, (result.stdout[:500], result.stderr[:500])
    line = one_line(result.stderr)
    return line.split()[0], line


def snapshot(db_url: str, execution_id: str) -> tuple[Any, ...]:
    """An execution's row and its whole log, exactly as stored."""
    eng = Engine(db_url)
    try:
        row = eng.get(execution_id)
        events = [(e.seq, e.at, e.line, encode_body(e.body)) for e in eng.history(execution_id)]
        return (msgspec.to_builtins(row), events)
    finally:
        eng.close()


@pytest.fixture
def recorded(db_url: str, run_cli) -> Callable[..., None]:
    """An ``ok`` execution that ended before the hostile input; call it to check that its
    row and log are unchanged (``db=`` when the test uses another database)."""
    where: dict[str, Any] = {}

    def record(db: str = db_url) -> None:
        result = run_cli("run", str(HOSTILE / "ok.py"), db=db)
        assert result.exit_code == 0, result.stderr
        execution_id = result.stdout.split()[0]
        where.update(db=db, id=execution_id, before=snapshot(db, execution_id))

    def intact() -> None:
        assert snapshot(where["db"], where["id"]) == where["before"]

    intact.record = record  # type: ignore[attr-defined]
    return intact


@pytest.fixture
def before(recorded) -> Callable[[], None]:
    """``recorded`` with the ``ok`` execution made at once on this test's database."""
    recorded.record()
    return recorded


# -- handlers that swallow the engine's suspension ------------------------------------------


@pytest.mark.usefixtures("no_warm_cache")
@pytest.mark.parametrize("flow", ["swallow_sleep", "swallow_child", "swallow_return", "swallow_loop", "swallow_forever"])
def test_swallowed_suspension_ends_in_error_saying_what_to_do(flow, engine_argv, engine, before):
    proc = engine_process(engine_argv, "run", str(HOSTILE / f"{flow}.py"))
    assert proc.returncode == 1 and proc.stdout == ""
    line = one_line(proc.stderr)
    execution_id = line.split()[0]
    assert line.startswith(f"{execution_id} ENDED_ERROR: execution {execution_id}: the handler caught the engine's suspension")
    assert "with a bare `except:` or `except BaseException:` and carried on" in line
    assert "Catch `Exception` instead, or add `except flow_api.LifecycleSignal: raise` before it." in line
    ended = engine.history(execution_id)[-1].body
    assert isinstance(ended, ExecutionEnded) and ended.error.type == "SuspensionSwallowedError"
    before()


# -- flows that start themselves --------------------------------------------------------------


def test_infinite_recursion_stops_at_the_depth_limit(engine_argv, engine, before):
    proc = engine_process(engine_argv, "run", str(HOSTILE / "recurse.py"))
    assert proc.returncode == 1
    line = one_line(proc.stderr)
    rows = engine.store.list_executions(flow="recurse")
    assert len(rows) == children.MAX_DEPTH + 1
    assert {r.status for r in rows} == {"ENDED_ERROR"}
    deepest = max(rows, key=lambda r: r.depth)
    assert deepest.message == (
        f"InvalidInputError: execution {deepest.id}: starting flow 'recurse' would nest executions "
        f"{children.MAX_DEPTH + 1} deep, over the limit of {children.MAX_DEPTH}; does the flow start itself "
        f"without an end condition? (line {line_of('recurse', 'this.flow')})"
    )
    assert f"over the limit of {children.MAX_DEPTH}" in line  # the root's line carries the cause
    before()


def test_fan_out_bomb_stops_at_the_tree_limit_and_the_worker_goes_on(monkeypatch, run_cli, engine, before):
    limit = 60
    monkeypatch.setattr(children, "MAX_TREE_EXECUTIONS", limit)
    engine.sync_flows(HOSTILE)
    root = engine.start("bomb")
    bystander = engine.start("ok")
    worker = engine.worker(concurrency=8, lease_seconds=5)
    stop = time.monotonic() + 30  # only stops a bomb that never stops
    worker.run(until=lambda: time.monotonic() > stop, until_idle=True)
    assert time.monotonic() < stop, "the fan-out never stopped"

    rows = engine.store.list_executions(flow="bomb")
    # racing activations may overshoot a little: each counts the tree once and creates two
    assert limit <= len(rows) <= limit + 2 * worker.concurrency
    assert all(r.root_id == root and r.ended for r in rows)
    refused = [r for r in rows if r.status == "ENDED_ERROR"]
    assert refused and all(
        f"would grow the tree of execution {root} past the limit of {limit} executions" in r.message for r in refused
    )
    assert engine.get(bystander).status == "ENDED_SUCCESS"  # the same worker served the rest
    shown = run_cli("show", refused[0].id, "--json")
    assert shown.exit_code == 0 and "past the limit" in shown.stdout
    before()


# -- values of 50 MB ---------------------------------------------------------------------------


def test_fifty_megabyte_input_is_refused_before_anything_is_created(run_cli, engine, before):
    engine.sync_flows(HOSTILE)
    count = len(engine.store.list_executions())
    with pytest.raises(EngineError, match=f"inputs for flow 'ok' cannot be recorded: a value of 52.4 MB {LIMIT_TEXT}"):
        engine.start("ok", {"pad": "x" * MB50})
    result = run_cli("run", "ok", "-i", "pad=" + "x" * MB50)  # in-process: no ARG_MAX
    assert result.exit_code == 1
    assert one_line(result.stderr).startswith(f"Error: inputs for flow 'ok' cannot be recorded: a value of 52.4 MB {LIMIT_TEXT}")
    assert len(engine.store.list_executions()) == count
    before()


def test_fifty_megabyte_values_are_refused_and_the_worker_keeps_serving(run_cli, engine_argv, engine, before):
    engine.sync_flows(HOSTILE)
    execution_id, line = failed_run(run_cli("run", "big", "-i", "what=output"))
    assert line == (
        f"{execution_id} ENDED_ERROR: InvalidInputError: execution {execution_id}: output cannot be recorded: "
        f"a value of 52.4 MB {LIMIT_TEXT} for one recorded value; store large data elsewhere and record a "
        f"reference to it (line {line_of('big', 'this.set_output(big=')})"
    )

    # one worker process meets every kind in turn, with good executions in between
    kinds = ("output", "halves", "step", "child_input", "setting", "log")
    sizes = {"halves": 20}  # two 10 MB fields: each fits, together they do not
    big = {what: engine.start("big", {"what": what, "mb": sizes.get(what, 50)}) for what in kinds}
    good = [engine.start("ok") for _ in kinds]
    proc = engine_process(engine_argv, "worker", "--until-idle", "--lease", "2", timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr[-3000:]

    for what in ("output", "halves", "step", "child_input", "setting"):
        row = engine.get(big[what])
        assert row.status == "ENDED_ERROR" and LIMIT_TEXT in row.message, (what, row.message[:300])
        assert "\n" not in row.message
    assert "output (all its fields together) cannot be recorded: a value of 21.0 MB" in engine.get(big["halves"]).message
    assert list(engine.get(big["halves"]).output_value) == ["a"]  # the half set before the refusal is kept
    assert engine.get(big["step"]).output_value == {}
    # a 50 MB log line has no limit of its own today: it is stored, not refused
    assert engine.get(big["log"]).status == "ENDED_SUCCESS"
    logged = next(e.body for e in engine.history(big["log"]) if e.kind == "log")
    assert len(logged.message) <= MAX_TEXT and "characters left out" in logged.message  # cut, not 50 MB
    assert [engine.get(i).status for i in good] == ["ENDED_SUCCESS"] * len(kinds)
    assert engine.store.get_setting("big") is None
    before()


# -- values that cannot be recorded -------------------------------------------------------------


@pytest.mark.parametrize("what", ["output", "step", "child_input", "setting"])
def test_unserialisable_value_is_a_clear_error(what, run_cli, engine, before):
    execution_id, line = failed_run(run_cli("run", str(HOSTILE / "unserialisable.py"), "-i", f"what={what}"))
    assert f"{execution_id} ENDED_ERROR: InvalidInputError: execution {execution_id}: " in line
    assert "a value of type object cannot be recorded; use JSON-like values" in line
    assert engine.store.get_setting("bad") is None
    before()


def test_refusals_are_recorded_so_the_replay_agrees(run_cli, engine, before):
    """A handler that catches each refusal and sleeps is replayed: every refusal must be
    answered from the log (a refusal not recorded would look like nondeterminism)."""
    result = run_cli("run", str(HOSTILE / "unserialisable.py"), "-i", "catch=true")
    assert result.exit_code == 0, result.stderr
    execution_id = result.stdout.split()[0]
    row = engine.get(execution_id)
    assert row.status == "ENDED_SUCCESS" and len(row.output_value["refused"]) == 4
    failed = [e.body for e in engine.history(execution_id) if isinstance(e.body, CommandFailed)]
    assert [(f.failed_command, f.failed_identity) for f in failed] == [
        ("set_output", ""), ("step", "make"), ("flow", "ok"), ("setting_save", "bad"),
    ]
    before()


# -- names that climb out of a folder -------------------------------------------------------------


def test_flow_names_with_path_separators(run_cli, engine, before):
    for name in ("../x", "../../etc/passwd", "a/b", ".."):
        result = run_cli("run", name)
        assert result.exit_code == 1
        assert one_line(result.stderr).startswith(f"Error: flow {name!r} does not exist (known flows: ")
    result = run_cli("run", "../x.py")
    assert result.exit_code == 1 and one_line(result.stderr) == "Error: flow file ../x.py does not exist"
    for name in ("a/b", "../x", "..", "a\\b", "x/../y"):
        with pytest.raises(EngineError, match=r"invalid flow name .*without path separators or '\.\.'"):
            engine.register_flow(name, "def handler(system, this, inputs):\n    pass\n")
    execution_id, line = failed_run(run_cli("run", str(HOSTILE / "passwd.py")))
    assert line == (
        f"{execution_id} ENDED_ERROR: ResourceNotFoundError: execution {execution_id}: flow '../etc/passwd' "
        "does not exist; register it with `engine flows sync DIR` or put its file beside the flow that "
        f"starts it (line {line_of('passwd', 'this.flow')})"
    )
    before()


# -- a database written by a newer engine ----------------------------------------------------------


@pytest.mark.sqlite_only("sets the schema version with SQLite's PRAGMA user_version")
def test_database_of_a_newer_schema_version(db_file, run_cli, engine_argv, before):
    newer = SCHEMA_VERSION + 5
    with contextlib.closing(sqlite3.connect(db_file)) as conn:
        conn.execute(f"PRAGMA user_version={newer}")
    expected = f"Error: database {db_file} has schema version {newer}, newer than this engine's {SCHEMA_VERSION}: "
    for args in (("ls",), ("run", str(HOSTILE / "ok.py"))):
        result = run_cli(*args)
        assert result.exit_code == 1 and one_line(result.stderr).startswith(expected)
    proc = engine_process(engine_argv, "worker", "--until-idle")
    assert proc.returncode == 1 and one_line(proc.stderr).startswith(expected)
    with contextlib.closing(sqlite3.connect(db_file)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == newer  # left as it was
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    before()


# -- damaged database files --------------------------------------------------------------------------


def filled_database(db_file: str, run_cli) -> list[str]:
    """A few executions, checkpointed into the main file (no WAL left)."""
    ids = []
    for n in range(6):
        result = run_cli("run", str(HOSTILE / "ok.py"), "-i", "pad=" + "p" * 3000 * n)
        assert result.exit_code == 0, result.stderr
        ids.append(result.stdout.split()[0])
    queued = run_cli("run", str(HOSTILE / "ok.py"), "--detach")  # for a worker to claim
    assert queued.exit_code == 0, queued.stderr
    with contextlib.closing(sqlite3.connect(db_file)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return ids


@pytest.mark.sqlite_only("writes garbage over a page of the SQLite file")
def test_corrupted_database_gives_one_line_and_no_traceback(db_file, run_cli, engine_argv):
    ids = filled_database(db_file, run_cli)
    with contextlib.closing(sqlite3.connect(db_file)) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'executions'").fetchone()[0]
    with open(db_file, "r+b") as f:  # garbage over the executions table's root page
        f.seek((root - 1) * page_size)
        f.write(b"\xde\xad\xbe\xef" * (page_size // 4))

    for args in (("ls",), ("show", ids[0])):
        result = run_cli(*args)
        assert result.exit_code == 1
        line = one_line(result.stderr)
        assert line.startswith(f"Error: cannot read database {db_file}: database disk image is malformed; ")
        assert "restore it from a backup" in line
    result = run_cli("run", str(HOSTILE / "ok.py"))
    assert result.exit_code == 1 and "malformed" in one_line(result.stderr)
    proc = engine_process(engine_argv, "worker", "--until-idle")  # its claim meets the damage
    assert proc.returncode == 1 and "malformed" in last_line(proc.stderr)


@pytest.mark.sqlite_only("truncates the SQLite file")
def test_truncated_database_gives_one_line_and_no_traceback(db_file, run_cli, engine_argv):
    filled_database(db_file, run_cli)
    os.truncate(db_file, os.path.getsize(db_file) // 2)
    for args in (("ls",), ("run", str(HOSTILE / "ok.py"))):
        result = run_cli(*args)
        assert result.exit_code == 1
        assert "database disk image is malformed" in one_line(result.stderr)
    proc = engine_process(engine_argv, "worker", "--until-idle")
    assert "Traceback" not in proc.stderr, proc.stderr
    if proc.returncode != 0:  # where the cut falls decides whether the worker meets it
        assert "malformed" in last_line(proc.stderr)


# -- a read-only database ------------------------------------------------------------------------------


@contextlib.contextmanager
def read_only_file(path: str) -> Iterator[None]:
    """Make ``path`` unwritable for this process. Root ignores file modes, so as root the
    file is made immutable (``chattr +i``); SQLite then opens it read-only."""
    if os.geteuid() != 0:
        os.chmod(path, 0o444)
        try:
            yield
        finally:
            os.chmod(path, 0o644)
        return
    try:
        made = subprocess.run(["chattr", "+i", path], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        pytest.skip("chattr is not installed: cannot make a file read-only for root")
    if made.returncode != 0:
        pytest.skip(f"chattr +i is not supported here: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", path], check=True)


@pytest.mark.sqlite_only("makes the SQLite file read-only")
def test_read_only_database(db_file, run_cli, engine_argv, before):
    """Run in fresh processes: inside one process SQLite reuses a file descriptor it opened
    for writing earlier, so only a new process sees the file as read-only."""
    queued = run_cli("run", str(HOSTILE / "ok.py"), "--detach")
    assert queued.exit_code == 0, queued.stderr
    queued_id = queued.stdout.strip()
    with read_only_file(db_file):
        listed = engine_process(engine_argv, "ls")  # reading still works
        assert listed.returncode == 0 and queued_id in listed.stdout, listed.stderr
        ran = engine_process(engine_argv, "run", str(HOSTILE / "ok.py"))
        assert ran.returncode == 1 and ran.stdout == ""
        assert one_line(ran.stderr) == (
            f"Error: cannot write to database {db_file}: attempt to write a readonly database; make the file "
            "and its folder writable. Nothing from this write was recorded."
        )
        proc = engine_process(engine_argv, "worker", "--until-idle")  # retries, backs off, gives up
        assert proc.returncode == 1
        assert "attempt to write a readonly database" in last_line(proc.stderr)
        retries = proc.stderr.strip().splitlines()[:-1]
        assert retries and all("retries in" in line for line in retries), proc.stderr
    before()
    done = run_cli("worker", "--until-idle")  # writable again: the queued one runs
    assert done.exit_code == 0, done.stderr
    assert snapshot(db_file, queued_id)[0]["status"] == "ENDED_SUCCESS"


@pytest.mark.sqlite_only("makes the SQLite file read-only")
def test_a_worker_started_on_a_read_only_database_carries_on_once_it_is_writable(db_file, run_cli, engine_argv):
    """SQLite opens a file it cannot write read-only, and such a connection stays read-only:
    the worker must open a new one, or it fails for ever after the file is fixed."""
    queued = run_cli("run", str(HOSTILE / "ok.py"), "--detach").stdout.strip()
    with read_only_file(db_file):
        worker = subprocess.Popen(engine_argv("worker"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while "attempt to write a readonly database" not in (worker.stderr.readline() or ""):
                assert worker.poll() is None and time.monotonic() < deadline, "the worker never met the read-only file"
        except BaseException:
            worker.kill()
            raise
    try:  # writable again: the same worker process, without a restart, runs the queued execution
        wait_until(lambda: snapshot(db_file, queued)[0]["status"] == "ENDED_SUCCESS",
                   "the worker recovering once the file was writable")
    finally:
        worker.kill()
        worker.wait()


# -- a full disk ---------------------------------------------------------------------------------------


def met_full_disk(log_text: Callable[[], str], eng: Engine, execution_id: str) -> None:
    """Wait until execution ``execution_id``'s timer is due and the worker has since logged a
    write refused for a full disk (claiming or committing it); the deadlines only stop a hung test."""

    def refusals() -> int:
        return log_text().count("database or disk is full")

    wait_until(lambda: (eng.get(execution_id).wake_at or 0) <= time.time(), f"the timer of {execution_id} becoming due")
    seen = refusals()
    wait_until(lambda: refusals() != seen, f"the worker meeting the full disk after {execution_id} became due")


@pytest.mark.sqlite_only("fills the SQLite file to its max_page_count")
def test_full_database_page_limit_then_space_is_back(db_file, run_cli, monkeypatch, before, caplog):
    """SQLite's ``max_page_count`` is per connection, so every connection the engine opens
    in this process gets it, and the test raises it on all of them to free space."""
    connections: list[sqlite3.Connection] = []
    limit: dict[str, int | None] = {"pages": None}
    real_connect = SqliteStore._connect

    def connect(self: SqliteStore) -> sqlite3.Connection:
        conn = real_connect(self)
        if limit["pages"] is not None:
            conn.execute(f"PRAGMA max_page_count={limit['pages']}")
        connections.append(conn)
        return conn

    def set_limit(pages: int | None) -> None:
        limit["pages"] = pages
        for conn in connections:
            with contextlib.suppress(sqlite3.ProgrammingError):  # closed already
                conn.execute(f"PRAGMA max_page_count={pages or 1073741823}")

    monkeypatch.setattr(SqliteStore, "_connect", connect)
    eng = Engine(db_file)
    eng.sync_flows(HOSTILE)
    alerts = Path(db_file).parent / "alerts"
    sleeper = eng.start("slow_pad", {"sleep": 0.5, "pad": 200_000, "alerts": str(alerts)})
    worker = eng.worker(concurrency=4, lease_seconds=0.5)
    thread = threading.Thread(target=worker.run, kwargs={"until": lambda: eng.get(sleeper).ended}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while eng.get(sleeper).status != "WAITING" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert eng.get(sleeper).status == "WAITING"
        with contextlib.closing(sqlite3.connect(db_file)) as conn:
            set_limit(conn.execute("PRAGMA page_count").fetchone()[0] + 1)

        result = run_cli("run", str(HOSTILE / "ok.py"), "-i", "pad=" + "p" * 200_000)
        assert result.exit_code == 1
        assert one_line(result.stderr) == (
            f"Error: cannot write to database {db_file}: database or disk is full; free disk space. "
            "Nothing from this write was recorded."
        )
        met_full_disk(lambda: "\n".join(caplog.messages), eng, sleeper)  # its 200 kB step result met it
        assert thread.is_alive() and not eng.get(sleeper).ended
        before()

        set_limit(None)  # space is back
        thread.join(timeout=20)
        assert not thread.is_alive(), "the worker did not finish the sleeper once space was back"
        row = eng.get(sleeper)
        assert (row.status, row.output_value) == ("ENDED_SUCCESS", {"size": 200_000})
        assert not alerts.exists(), alerts.read_text()  # the handler never saw the full disk
        again = run_cli("run", str(HOSTILE / "ok.py"), "-i", "pad=" + "p" * 200_000)
        assert again.exit_code == 0, again.stderr
    finally:
        worker.stop()
        thread.join(timeout=20)
        eng.close()
    before()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs (needs root and mount; skipped elsewhere)."""
    mount = tmp_path / "small"
    mount.mkdir()
    try:
        made = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        pytest.skip("no mount command")
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def fill(path: Path) -> None:
    """Write zeros to ``path`` until the file system is full."""
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        with contextlib.suppress(OSError):
            while True:
                f.write(chunk)
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 512)


@pytest.mark.sqlite_only("puts the SQLite file on a full tmpfs")
def test_full_disk_then_space_is_back(small_disk, run_cli, engine_argv, tmp_path, recorded):
    db = str(small_disk / "engine.db")
    recorded.record(db)
    with open(tmp_path / "worker.log", "w") as log:
        worker = subprocess.Popen(engine_argv("worker", "--lease", "1", db=db), stdout=log, stderr=subprocess.STDOUT)
    try:
        alerts = tmp_path / "alerts"
        detached = run_cli(
            "run", str(HOSTILE / "slow_pad.py"), "-i", "sleep=1.5", "-i", "pad=300000", "-i", f"alerts={alerts}",
            "--detach", db=db,
        )
        sleeper = detached.stdout.strip()
        eng = Engine(db)
        deadline = time.monotonic() + 20
        while eng.get(sleeper).status != "WAITING" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert eng.get(sleeper).status == "WAITING"

        fill(small_disk / "filler")
        result = run_cli("run", str(HOSTILE / "ok.py"), "-i", "pad=" + "p" * 1_000_000, db=db)
        assert result.exit_code == 1
        assert one_line(result.stderr) == (
            f"Error: cannot write to database {db}: database or disk is full; free disk space. "
            "Nothing from this write was recorded."
        )
        met_full_disk((tmp_path / "worker.log").read_text, eng, sleeper)  # the sleeper woke into the full disk
        assert worker.poll() is None and not eng.get(sleeper).ended

        (small_disk / "filler").unlink()  # space is back
        deadline = time.monotonic() + 20
        while not eng.get(sleeper).ended and time.monotonic() < deadline:
            time.sleep(0.05)
        row = eng.get(sleeper)
        assert (row.status, row.output_value) == ("ENDED_SUCCESS", {"size": 300_000})
        assert not alerts.exists(), alerts.read_text()  # the handler never saw the full disk
        again = run_cli("run", str(HOSTILE / "ok.py"), db=db)
        assert again.exit_code == 0, again.stderr
        assert worker.poll() is None
        eng.close()
        recorded()
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    text = (tmp_path / "worker.log").read_text()
    assert "Traceback" not in text, text[-3000:]
