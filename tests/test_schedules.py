"""Schedules: each slot fires exactly once however many servers and workers run on one
store; missed slots catch up as configured; pause, resume, rm; one-line errors."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from serve_support import ENGINE_ARGV, SERVE_FLOWS, Served, engine_command, start_server

from cli.main import cli
from engine import schedules
from engine.api import Engine
from waiting import wait_until

YEARLY = "0 0 1 1 *"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = Engine(db_url)
    eng.sync_flows(SERVE_FLOWS)
    try:
        yield eng
    finally:
        eng.close()


def fired(engine: Engine, name: str) -> list[dict[str, Any]]:
    """The ``schedule`` input of each execution the schedule ``name`` started, by slot."""
    found = [row.input_value["schedule"] for row in engine.store.list_executions(limit=None)
             if row.name == f"schedule {name}"]
    return sorted(found, key=lambda s: s["slot_epoch"])


def run_cli(db: str, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--db", db, *args])


def years_since(start: int) -> list[int]:
    """The epoch of each 1 January 00:00 UTC from the year ``start`` to now."""
    return [int(datetime(year, 1, 1, tzinfo=timezone.utc).timestamp())
            for year in range(start, datetime.now(timezone.utc).year + 1)]


# -- exactly once --------------------------------------------------------------------------


def _spawn_worker(db: str, folder: Path, n: int) -> subprocess.Popen[bytes]:
    with (folder / f"worker{n}.err").open("wb") as err:
        return subprocess.Popen([*ENGINE_ARGV, "--db", db, "worker"], stdout=subprocess.DEVNULL, stderr=err)


def test_each_slot_fires_exactly_once_with_two_servers_and_two_workers(tmp_path: Path, db_url: str) -> None:
    servers: list[Served] = []
    workers: list[subprocess.Popen[bytes]] = []
    try:
        servers = [start_server(tmp_path, db_url), start_server(tmp_path, db_url)]
        db = servers[0].db
        workers = [_spawn_worker(db, tmp_path, n) for n in range(2)]
        added = engine_command(db, "schedules", "add", "tick", "--flow", "echo", "--cron", "* * * * * *",
                               "-i", "who=cron", "--json")
        assert added.returncode == 0, added.stderr
        first = datetime.fromisoformat(json.loads(added.stdout)["next_slot"]).timestamp()
        with closing(Engine(db)) as engine:
            wait_until(lambda: len(fired(engine, "tick")) >= 6, "the schedule firing 6 slots")
            assert engine_command(db, "schedules", "pause", "tick").returncode == 0  # no slot fires after this
            token = engine_command(db, "tokens", "create", "t").stdout.strip()
            with servers[1].client(token) as api:
                listed = api.get("/api/schedules")
            assert listed.status_code == 200, listed.text
            assert [(s["name"], s["paused"], s["inputs"]) for s in listed.json()] == [("tick", True, {"who": "cron"})]
            slots = [s["slot_epoch"] for s in fired(engine, "tick")]
            assert Counter(slots).most_common(1)[0][1] == 1, f"a slot fired twice: {slots}"
            assert slots == list(range(int(first), int(first) + len(slots))), f"a slot is missing: {slots}"
            rows = [r for r in engine.store.list_executions(limit=None) if r.name == "schedule tick"]
            assert all(r.input_value["who"] == "cron" for r in rows)
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            proc.wait(timeout=60)
        for served in servers:
            assert served.stop() == 0, served.output()


def test_two_stores_firing_one_slot_create_one_execution(engine: Engine, db_url: str) -> None:
    """The compare-and-set on ``next_slot``: a second firing of the same slot, from
    another connection that read the schedule before the first fired, changes nothing."""
    schedules.add(engine.store, "y", "echo", YEARLY, start="2020-01-01", catch_up="all", now=time.time())
    with closing(Engine(db_url)) as other:
        row = schedules.ScheduleStore(other.store).get("y")
        assert row is not None
        assert schedules.fire_due(engine.store, time.time())[0] == len(years_since(2020))
        flow = other.store.get_flow("echo")
        assert flow is not None
        assert not schedules.ScheduleStore(other.store).fire("y", row.next_slot, row.next_slot + 1, [])
    assert len(fired(engine, "y")) == len(years_since(2020))


# -- catching up ------------------------------------------------------------------------------


@pytest.mark.parametrize(("catch_up", "expected"), [
    ("latest", lambda years: years[-1:]), ("all", lambda years: years), ("none", lambda years: [])])
def test_missed_slots_fire_as_catch_up_says(engine: Engine, catch_up: str, expected: Any) -> None:
    schedules.add(engine.store, "yearly", "echo", YEARLY, start="2020-01-01", catch_up=catch_up, now=time.time())
    engine.worker(concurrency=2).run(until_idle=True)
    got = fired(engine, "yearly")
    assert [s["slot_epoch"] for s in got] == expected(years_since(2020))
    for s in got:
        assert datetime.fromisoformat(s["slot"]).timestamp() == s["slot_epoch"] and s["name"] == "yearly"
    rows = [r for r in engine.store.list_executions(limit=None) if r.name == "schedule yearly"]
    assert all(r.status == "ENDED_SUCCESS" for r in rows)
    (listed,) = schedules.listing(engine.store)
    assert datetime.fromisoformat(listed.next_slot or "").timestamp() > time.time()  # the schedule goes on
    engine.worker(concurrency=2).run(until_idle=True)
    assert len(fired(engine, "yearly")) == len(got)  # nothing fires twice


def test_catch_up_all_is_bounded(engine: Engine) -> None:
    start = datetime.now(timezone.utc).replace(microsecond=0).timestamp() - 3 * schedules.MAX_CATCH_UP * 60
    schedules.add(engine.store, "minutely", "echo", "* * * * *", start=datetime.fromtimestamp(start).astimezone().isoformat(),
                  catch_up="all", now=time.time())
    now = time.time()
    assert schedules.fire_due(engine.store, now)[0] == schedules.MAX_CATCH_UP
    slots = [s["slot_epoch"] for s in fired(engine, "minutely")]
    assert slots[-1] == int(now // 60 * 60)  # the latest minute at or before now (now + 1 could cross into the next)
    assert slots == sorted(set(slots)) and slots[-1] - slots[0] == 60 * (schedules.MAX_CATCH_UP - 1)  # the latest 100


def test_a_slot_is_computed_in_the_schedules_time_zone(engine: Engine) -> None:
    schedules.add(engine.store, "vienna", "echo", "0 8 1 7 *", timezone="Europe/Vienna", start="2020-01-01",
                  catch_up="all", now=time.time())
    schedules.fire_due(engine.store, time.time())
    first = fired(engine, "vienna")[0]
    assert first["slot"] == "2020-07-01T08:00:00+02:00"  # summer time
    assert first["slot_epoch"] == datetime(2020, 7, 1, 6, tzinfo=timezone.utc).timestamp()


# -- pause, resume, rm ------------------------------------------------------------------------


def test_a_paused_schedule_fires_nothing_and_resumes_from_its_next_slot(engine: Engine, db_url: str) -> None:
    db = db_url
    assert run_cli(db, "schedules", "add", "p", "--flow", "echo", "--cron", "* * * * * *").exit_code == 0
    assert run_cli(db, "schedules", "pause", "p").exit_code == 0
    later = time.time() + 5
    assert schedules.fire_due(engine.store, later)[0] == 0
    listed = json.loads(run_cli(db, "schedules", "ls", "--json").output)
    assert listed[0]["paused"] is True and listed[0]["next_slot"] is None
    assert run_cli(db, "schedules", "resume", "p").exit_code == 0
    (row,) = schedules.ScheduleStore(engine.store).all()
    assert not row.paused and row.next_slot > time.time() - 1  # slots while paused do not fire
    assert schedules.fire_due(engine.store, row.next_slot + 0.5)[0] == 1
    assert [s["slot_epoch"] for s in fired(engine, "p")] == [row.next_slot]


def test_rm_stops_a_schedule_and_a_new_one_of_that_name_fires_anew(engine: Engine, db_url: str) -> None:
    db = db_url
    assert run_cli(db, "schedules", "add", "r", "--flow", "echo", "--cron", YEARLY, "--start", "2025-06-01").exit_code == 0
    assert schedules.fire_due(engine.store, time.time())[0] == 1
    removed = run_cli(db, "schedules", "rm", "r")
    assert removed.exit_code == 0 and "removed schedule 'r'" in removed.output
    assert run_cli(db, "schedules", "ls", "--json").output.strip() == "[]"
    assert run_cli(db, "schedules", "add", "r", "--flow", "echo", "--cron", YEARLY, "--start", "2025-06-01").exit_code == 0
    assert schedules.fire_due(engine.store, time.time())[0] == 1  # not refused as the slot fired before
    assert len(fired(engine, "r")) == 2


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["add", "b", "--flow", "echo", "--cron", "bad"], "invalid cron expression 'bad'"),
    (["add", "b", "--flow", "echo", "--cron", "* * * * * * * *"], "invalid cron expression"),
    (["add", "b", "--flow", "echo", "--cron", "61 * * * *"], "invalid cron expression"),
    (["add", "b", "--flow", "echo", "--cron", "0 0 30 2 *"], "has no slot after"),
    (["add", "b", "--flow", "echo", "--cron", "* * * * *", "--timezone", "Mars/Olympus"], "unknown time zone"),
    (["add", "b", "--flow", "echo", "--cron", "* * * * *", "--timezone", "../etc/passwd"], "unknown time zone"),
    (["add", "b", "--flow", "nope", "--cron", "* * * * *"], "flow 'nope' does not exist"),
    (["add", "b", "--flow", "echo", "--cron", "* * * * *", "--start", "soon"], "invalid start 'soon'"),
    (["add", "b", "--flow", "echo", "--cron", "* * * * *", "--catch-up", "some"], "Invalid value for '--catch-up'"),
    (["add", "b c", "--flow", "echo", "--cron", "* * * * *"], "invalid schedule name"),
    (["rm", "ghost"], "no schedule 'ghost'"),
    (["pause", "ghost"], "no schedule 'ghost'"),
    (["resume", "ghost"], "no schedule 'ghost'"),
])
def test_bad_input_is_a_one_line_error(engine: Engine, db_url: str, args: list[str], message: str) -> None:
    result = subprocess.run([*ENGINE_ARGV, "--db", db_url, "schedules", *args],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    if "Invalid value" not in message:  # click's usage errors add a usage line
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not schedules.listing(engine.store)


def test_cron_nicknames_are_accepted(engine: Engine) -> None:
    schedules.add(engine.store, "daily", "echo", "@daily", timezone="Europe/Vienna", now=time.time())
    (listed,) = schedules.listing(engine.store)
    assert datetime.fromisoformat(listed.next_slot or "").strftime("%H:%M:%S") == "00:00:00"


def test_a_name_in_use_is_refused(engine: Engine, db_url: str) -> None:
    db = db_url
    assert run_cli(db, "schedules", "add", "a", "--flow", "echo", "--cron", "* * * * *").exit_code == 0
    again = run_cli(db, "schedules", "add", "a", "--flow", "echo", "--cron", "0 * * * *")
    assert again.exit_code != 0 and "schedule 'a' exists already" in again.output
    assert [s.cron for s in schedules.listing(engine.store)] == ["* * * * *"]
