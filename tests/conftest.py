"""Shared fixtures for the core engine tests.

Every test gets a fresh database of the store the suite runs on (a SQLite file under
``tmp_path``, or with ``ENGINE_TEST_STORE=postgres`` a PostgreSQL database: see
``tests/stores.py``); nothing here fakes the store. Tests that only make sense on SQLite
files say why with ``@pytest.mark.sqlite_only("reason")`` and are skipped on PostgreSQL.
Helpers are fixtures (not importable functions) because ``tests/`` and
``tests/connectors/`` each have a ``conftest.py`` and neither is a package.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from engine.activation import run_handler
from engine.api import Engine
from engine.decision import Decision
from engine.flows import LoadedFlow, compile_flow
from engine.replay import ReplayContext
from stores import DATABASES, chosen_store, configuration_error, fresh_database

TESTS = Path(__file__).parent
FLOWS = TESTS / "flows"

#: Workers and ``engine run`` run handlers in this process, as they did before supervision
#: (output captured by CliRunner, kills counted by the crash tests); test_supervision.py
#: passes --supervise to test the supervised path.
os.environ["ENGINE_SUPERVISE"] = "0"

#: How to start the real ``engine`` command in a child process (no dependence on PATH).
ENGINE_ARGV = [sys.executable, "-c", "from cli.main import main; main()"]


@pytest.fixture
def no_warm_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers (in this process and the ones it starts) replay every wake-up from the log:
    for tests of what only a replay does (count handler runs, find nondeterminism, unwind
    a handler that swallows the suspension), which a handler parked in the warm cache
    (``engine.warm``) skips."""
    monkeypatch.setenv("ENGINE_WARM_CACHE", "0")


@pytest.fixture
def flows_root() -> Path:
    """``tests/flows``: the flow scripts the tests run."""
    return FLOWS


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to start when ``ENGINE_TEST_STORE`` names a store the suite cannot reach."""
    problem = configuration_error()
    if problem is not None:
        raise pytest.UsageError(problem)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``sqlite_only(reason)`` when the suite runs on another store."""
    for item in items:
        mark = item.get_closest_marker("sqlite_only")
        if mark is None:
            continue
        if not mark.args or not str(mark.args[0]).strip():
            raise pytest.UsageError(f"{item.nodeid}: say why it is SQLite only: @pytest.mark.sqlite_only(\"reason\")")
        if chosen_store() != "sqlite":
            item.add_marker(pytest.mark.skip(reason=f"SQLite only: {mark.args[0]}"))


@pytest.fixture
def make_db(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """``make_db(name="engine")``: a new, empty database of the store the suite runs on, as
    the ``--db`` value that names it (a file under ``tmp_path``, or a PostgreSQL URL);
    PostgreSQL databases are dropped at teardown."""
    with ExitStack() as made:
        yield lambda name="engine": made.enter_context(fresh_database(tmp_path, name))


@pytest.fixture
def db_url(make_db: Callable[..., str]) -> str:
    """This test's database, as the ``--db`` value that names it (created on first use)."""
    return make_db()


@pytest.fixture
def db_file(db_url: str, request: pytest.FixtureRequest) -> str:
    """This test's database as a SQLite file path, for tests marked ``sqlite_only``."""
    if request.node.get_closest_marker("sqlite_only") is None:
        pytest.fail("db_file is the SQLite file: mark the test @pytest.mark.sqlite_only(\"reason\") or use db_url")
    return db_url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An ``Engine`` on this test's database."""
    eng = Engine(db_url)
    try:
        yield eng
    finally:
        eng.close()


@pytest.fixture
def run_cli(db_url: str) -> Callable[..., Result]:
    """``run_cli('ls', '--json')`` runs ``engine --db DB ls --json`` in-process through click.

    The result has ``exit_code``, ``stdout`` and ``stderr`` separately.
    """
    runner = CliRunner()

    def invoke(*args: str, db: str | None = None) -> Result:
        return runner.invoke(cli, ["--db", db or db_url, *args], catch_exceptions=False)

    return invoke


@pytest.fixture
def invoke(eng: Engine) -> Callable[..., Result]:
    """The CLI (in this process) against the database of the module's own ``eng`` fixture."""
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, ["--db", eng.store.path, *args], catch_exceptions=False)


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[Any]]]:
    """``spawn(argv, **popen_options)``: a real process, killed at teardown if still alive."""
    procs: list[subprocess.Popen[Any]] = []

    def start(argv: list[str], **options: Any) -> subprocess.Popen[Any]:
        proc = subprocess.Popen(argv, **options)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.fixture
def engine_argv(db_url: str) -> Callable[..., list[str]]:
    """``engine_argv('worker', '--lease', '1')``: argv for a real ``engine`` process on this database."""

    def argv(*args: str, db: str | None = None) -> list[str]:
        return [*ENGINE_ARGV, "--db", db or db_url, *args]

    return argv


@pytest.fixture
def show(run_cli: Callable[..., Result]) -> Callable[[str], dict[str, Any]]:
    """``show(id)``: the parsed output of ``engine show ID --json``."""

    def get(execution_id: str) -> dict[str, Any]:
        result = run_cli("show", execution_id, "--json")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    return get


@pytest.fixture
def wait_for_status(show: Callable[[str], dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Poll ``engine show --json`` until the execution has one of ``statuses``.

    Not a timed assertion: the deadline only stops a hung test; reaching it fails the test
    with the last status seen.
    """

    def wait(execution_id: str, *statuses: str, deadline: float = 30.0, proc: subprocess.Popen[Any] | None = None) -> dict[str, Any]:
        stop = time.monotonic() + deadline
        while True:
            data = show(execution_id)
            if data["status"] in statuses:
                return data
            if proc is not None and proc.poll() is not None:
                pytest.fail(f"worker exited ({proc.returncode}) while {execution_id} was {data['status']}")
            if time.monotonic() > stop:
                pytest.fail(f"execution {execution_id} still {data['status']}, expected {statuses}")
            time.sleep(0.02)

    return wait


class PureReplay:
    """The outcome of replaying a recorded history with no live backend."""

    def __init__(self, decision: Decision, ctx: ReplayContext, flow: LoadedFlow) -> None:
        self.decision = decision
        self.ctx = ctx
        self.flow = flow
        self.globals = flow.module_globals


@pytest.fixture
def pure_replay(engine: Engine) -> Callable[..., PureReplay]:
    """``pure_replay(id, source=None, history=None)``: replay the execution's history
    against its pinned code (or ``source``, to simulate a code change) with ``live=None``:
    any command not answered by the log makes the decision ``exhausted``."""

    def replay(execution_id: str, *, source: str | None = None, history: list[Any] | None = None) -> PureReplay:
        row = engine.get(execution_id)
        events = engine.history(execution_id) if history is None else history
        if source is None:
            pinned = engine.store.get_flow_version(row.flow_version)
            assert pinned is not None
            # compiled afresh, so module globals filled by the live run do not leak into the replay
            flow = compile_flow(pinned.name, pinned.version, pinned.source, pinned.path)
        else:
            flow = compile_flow(row.flow, hashlib.sha256(source.encode()).hexdigest(), source)
        ctx = ReplayContext(row, events, module_globals=flow.module_globals, flow_file=flow.filename, live=None)
        return PureReplay(run_handler(ctx, flow), ctx, flow)

    return replay


@pytest.fixture
def counter() -> Callable[[Path], int]:
    """``counter(path)``: the value of a file-backed counter (0 if never bumped)."""

    def read(path: Path) -> int:
        return int(path.read_text()) if path.exists() else 0

    return read


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Drop the PostgreSQL databases made ahead and the session's template (``stores.Databases``)."""
    DATABASES.finish()
