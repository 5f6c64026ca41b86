"""``engine db check`` finds a log the engine could not have written, on either store.

Each test damages the rows of a real database behind the store's back (``run_sql``, as
another program or a bad restore would) and reads the CLI's report: one line per
problem, exit 1, and a one-line error saying what to do. A real worker process writing
meanwhile must never make the check see a problem (it reads one snapshot).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from engine.api import Engine
from stores import run_sql
from waiting import wait_until

FLOW = Path(__file__).parent / "flows" / "dbfiles" / "few_steps.py"


@pytest.fixture
def ended(engine: Engine) -> Callable[[int], list[str]]:
    """``ended(n)``: n executions of few_steps, run to ENDED_SUCCESS in this process."""

    def run(count: int) -> list[str]:
        engine.register_file(FLOW)
        ids = [engine.start("few_steps", {"steps": 2}) for _ in range(count)]
        engine.worker().run(until_idle=True)
        assert {engine.get(e).status for e in ids} == {"ENDED_SUCCESS"}
        return ids

    return run


def test_db_check_reports_a_deleted_event_and_a_status_without_its_end(engine, ended, run_cli, db_url):
    first, second = ended(3)[:2]
    assert run_cli("db", "check").exit_code == 0
    run_sql(db_url, "DELETE FROM events WHERE execution_id = ? AND seq = 2", (first,))
    run_sql(db_url, "UPDATE executions SET status = 'ENDED_ERROR' WHERE id = ?", (second,))
    result = run_cli("db", "check")
    assert result.exit_code == 1
    last = len(engine.store.load_events(first)) + 1
    assert result.stdout.splitlines() == [
        f"execution {first}: events are missing from its log (seq 2 of 1..{last})",
        f"execution {second}: it is ENDED_ERROR but its end event says ENDED_SUCCESS",
    ]
    assert result.stderr.startswith(f"Error: database {db_url}: 2 problem(s) found;") and result.stderr.count("\n") == 1


#: A copy of event SEQ of the execution as seq {after}, and its last_seq moved there.
_COPY = ("INSERT INTO events (execution_id, seq, kind, at, line, body) SELECT execution_id, {after}, kind, at, line, body "
         "FROM events WHERE execution_id = '{id}' AND seq = SEQ")
_LAST_SEQ = "UPDATE executions SET last_seq = {after} WHERE id = '{id}'"

#: damage -> (statements, with {id} the execution, {last} its last seq, {after} one more; the lines reported)
DAMAGE: dict[str, tuple[list[str], list[str]]] = {
    "its last_seq moved on": ([_LAST_SEQ], ["its last_seq is {after} but its last event is seq {last}"]),
    "no events at all": (["DELETE FROM events WHERE execution_id = '{id}'", "UPDATE executions SET last_seq = 0 WHERE id = '{id}'"],
                         ["it has no events (not even `started`)", "it is ENDED_SUCCESS but its log has no end event"]),
    "its first event is not `started`": (["UPDATE events SET kind = 'step' WHERE execution_id = '{id}' AND seq = 1"],
                                         ["its first event is 'step', not 'started'"]),
    "an ended status without its end event": (["DELETE FROM events WHERE execution_id = '{id}' AND seq = {last}",
                                               "UPDATE executions SET last_seq = {last} - 1 WHERE id = '{id}'"],
                                              ["it is ENDED_SUCCESS but its log has no end event"]),
    "an end event under a status that has not ended": (["UPDATE executions SET status = 'WAITING' WHERE id = '{id}'"],
                                                       ["it is WAITING but its log ended it (ENDED_SUCCESS) at seq {last}"]),
    "two end events": ([_COPY.replace("SEQ", "{last}"), _LAST_SEQ], ["2 end events (seqs {last}, {after}); an execution ends once"]),
    "an event after its end": ([_COPY.replace("SEQ", "2"), _LAST_SEQ],
                               ["events after its end (seq {last}; the log goes on to seq {after})"]),
    "a lease held after its end": (["UPDATE executions SET lease_owner = 'w1' WHERE id = '{id}'"],
                                   ["it is ENDED_SUCCESS but holds a lease (owner w1); only RUNNING executions may"]),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_db_check_reports_each_broken_invariant_in_one_line(engine, ended, run_cli, db_url, damage):
    victim, sound = ended(2)
    last = len(engine.store.load_events(victim))
    statements, lines = DAMAGE[damage]
    for statement in statements:
        run_sql(db_url, statement.format(id=victim, last=last, after=last + 1))
    result = run_cli("db", "check", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["ok"], report["problems"]) == (
        False, [f"execution {victim}: " + line.format(last=last, after=last + 1) for line in lines])


def test_db_check_reports_events_of_an_execution_that_is_gone(ended, run_cli, db_url):
    victim = ended(1)[0]
    count = int(run_sql(db_url, "SELECT count(*) FROM events WHERE execution_id = ?", (victim,))[0][0])
    run_sql(db_url, "DELETE FROM executions WHERE id = ?", (victim,))
    result = run_cli("db", "check")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [f"events of unknown execution {victim}: {count} event(s) without an execution row"]


def test_db_check_of_a_database_being_written_finds_nothing(engine, engine_argv, spawn, db_url):
    """Checks run back to back while a real worker process ends executions: an execution
    that ends between two of a check's reads would look half ended without one snapshot
    (on PostgreSQL, reading without it failed this test in each of six runs)."""
    engine.register_file(FLOW)
    ids = [engine.start("few_steps", {"steps": 2}) for _ in range(60)]
    proc = spawn(engine_argv("worker", "--concurrency", "4"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    done = lambda: int(run_sql(db_url, "SELECT count(*) FROM executions WHERE status LIKE 'ENDED_%'")[0][0])  # noqa: E731
    wait_until(lambda: done() > 0, "the worker ended an execution", proc)
    checks: list[list[str]] = []

    def checked_until_all_ended() -> bool:
        checks.extend(engine.store.check() for _ in range(5))  # back to back: wait_until pauses between calls
        return done() == len(ids)

    wait_until(checked_until_all_ended, "every execution ended", proc)
    assert checks == [[]] * len(checks)


def test_db_check_names_a_missing_file_and_reads_a_sqlite_url(tmp_path, monkeypatch):
    """A path that names no file is refused without creating it; ``sqlite:///PATH`` is a file too."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    missing = runner.invoke(cli, ["--db", "missing.db", "db", "check"])
    assert missing.exit_code == 1 and not (tmp_path / "missing.db").exists()
    assert missing.stderr == "Error: database missing.db does not exist; pass --db PATH or set ENGINE_DB\n"
    Engine("there.db").close()
    found = runner.invoke(cli, ["--db", "sqlite:///there.db", "db", "check"])
    assert (found.exit_code, found.stdout) == (0, "database there.db: ok\n")
