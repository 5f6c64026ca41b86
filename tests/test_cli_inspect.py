"""`engine ls`, `show`, `history`, `logs`, `export` and `dev` on real executions."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.inspect import parse_since
from cli.main import cli
from engine.api import Engine

FLOWS = Path(__file__).parent / "flows" / "inspect"


@pytest.fixture
def batch(engine: Engine) -> dict[str, str]:
    """A finished batch (two order children it waited for) and a waiting order."""
    engine.sync_flows(FLOWS)
    parent = engine.start("batch")
    assert engine.run_until_ended(parent).status == "ENDED_SUCCESS"
    children = [r.id for r in engine.store.children(parent)]
    waiting = engine.start("order", {"item": "fig", "qty": 9, "pause": 3600})
    engine.worker().run(until=lambda: engine.get(waiting).status == "WAITING")
    return {"parent": parent, "first": children[0], "second": children[1], "waiting": waiting}


def ids(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [row["id"] for row in json.loads(result.stdout)]


def test_ls_filters_and_orders_newest_first(batch: dict[str, str], run_cli: Callable[..., Result]) -> None:
    everything = ids(run_cli("ls", "--json"))
    assert everything[0] == batch["waiting"] and set(everything) == set(batch.values())
    assert ids(run_cli("ls", "--status", "waiting", "--json")) == [batch["waiting"]]
    assert ids(run_cli("ls", "--flow", "batch", "--json")) == [batch["parent"]]
    assert set(ids(run_cli("ls", "--parent", batch["parent"], "--json"))) == {batch["first"], batch["second"]}
    assert ids(run_cli("ls", "--project", "elsewhere", "--json")) == []
    assert len(ids(run_cli("ls", "--since", "10m", "--json"))) == 4
    assert ids(run_cli("ls", "--since", "2999-01-01", "--json")) == []
    table = run_cli("ls", "--flow", "order")
    assert "WAITING" in table.stdout and "ordered 1 at 41.5" in table.stdout and "\x1b" not in table.stdout
    bad = run_cli("ls", "--since", "yesterday")
    assert bad.exit_code == 2 and "--since" in bad.stderr


def test_parse_since() -> None:
    before = time.time()
    since = parse_since("2h")
    assert before - 7200 <= since <= time.time() - 7200
    assert parse_since("2024-05-01") < parse_since("2024-05-01T12:00") < parse_since("1d")


def test_show_has_fields_children_dependencies_timings_and_version(
    batch: dict[str, str], run_cli: Callable[..., Result]
) -> None:
    data = json.loads(run_cli("show", batch["parent"], "--json").stdout)
    assert data["status"] == "ENDED_SUCCESS" and data["flow"] == "batch"
    assert {c["id"] for c in data["children"]} == {batch["first"], batch["second"]}
    assert {d["id"] for d in data["dependencies"]["waits_for"]} == {batch["first"], batch["second"]}
    assert data["version"]["version"] == data["version"]["current"] == data["flow_version"]
    assert data["timings"]["waits"] == 1 and data["timings"]["events"] >= 6
    child = json.loads(run_cli("show", batch["first"][:8], "--json").stdout)
    assert [d["id"] for d in child["dependencies"]["waited_by"]] == [batch["parent"]]
    text = run_cli("show", batch["parent"]).stdout
    assert "the flow's current version" in text and "children:" in text and "waits for:" in text
    assert "timings       queued" in text
    waiting = run_cli("show", batch["waiting"]).stdout
    assert "1 timer(s)" in waiting


def test_history_table_shows_calls_results_and_source_lines(batch: dict[str, str], run_cli: Callable[..., Result]) -> None:
    table = run_cli("history", batch["first"]).stdout
    assert "step(fetch_price)" in table and "41.5" in table
    assert '19: price = this.step(fetch_price, inputs["item"])' in table
    assert "ENDED_SUCCESS: ordered 1 at 41.5" in table
    parent = run_cli("history", batch["parent"]).stdout
    assert "flow('order')" in parent and "wait_for(" in parent and "· wait done" in parent
    events = json.loads(run_cli("history", batch["first"], "--json").stdout)
    assert [set(e) for e in events] == [{"seq", "kind", "at", "line", "data"}] * len(events)
    step = events[2]["data"]
    assert (step["kind"], step["name"], step["result"]) == ("step", "fetch_price", 41.5)
    (argument,) = step["args"]  # [name, digest, shortened value]
    assert (argument[0], argument[2]) == ("item", "'apple'") and len(argument[1]) == 16
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


def test_history_follow_streams_until_the_end(engine: Engine, run_cli: Callable[..., Result], tmp_path: Path) -> None:
    engine.sync_flows(FLOWS)
    execution = engine.start("tally", {"counter": str(tmp_path / "n"), "item": "pear", "qty": 2, "pause": 0.4})
    worker = engine.worker()
    thread = threading.Thread(target=worker.run, kwargs={"until": lambda: engine.get(execution).ended})
    thread.start()
    try:
        result = run_cli("history", execution, "--follow")
    finally:
        thread.join(10)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "timer_fired" in result.stdout and "ended" in lines[-2]
    assert lines[-1] == f"execution {execution} is ENDED_SUCCESS: total 14.5"
    streamed = run_cli("history", execution, "--follow", "--json").stdout.splitlines()
    assert [json.loads(s)["kind"] for s in streamed][-1] == "ended"


def test_logs(batch: dict[str, str], run_cli: Callable[..., Result]) -> None:
    text = run_cli("logs", batch["parent"]).stdout
    assert "info     both ordered  (line 9)" in text
    entries = json.loads(run_cli("logs", batch["first"], "--json").stdout)
    assert [(e["level"], e["message"]) for e in entries] == [("info", "ordering apple")]


@pytest.mark.parametrize("command", ["show", "history", "logs", "export", "debug", "replay"])
def test_unknown_id_is_one_line_on_stderr(command: str, run_cli: Callable[..., Result]) -> None:
    result = run_cli(command, "feedbeef")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no execution 'feedbeef'") and result.stderr.count("\n") == 1


@pytest.fixture
def dev_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "order.py").write_text((FLOWS / "order.py").read_text())
    yield folder


def test_dev_syncs_each_save_and_reports_what_it_breaks(engine: Engine, dev_dir: Path, db_url: str) -> None:
    engine.sync_flows(dev_dir)
    waiting = engine.start("order", {"item": "pear", "qty": 1, "pause": 3600})
    engine.worker().run(until=lambda: engine.get(waiting).status == "WAITING")
    done = threading.Event()
    renamed = (dev_dir / "order.py").read_text().replace("fetch_price", "lookup_price")

    def save_until_seen() -> None:
        saves = 0
        while not done.wait(0.3):  # save (a new version each time) until the watcher has seen one
            saves += 1
            (dev_dir / "order.py").write_text(f"{renamed}# save {saves}\n")

    saver = threading.Thread(target=save_until_seen)
    saver.start()
    try:
        result = CliRunner().invoke(cli, ["--db", db_url, "dev", str(dev_dir), "--exit-after", "1"])
    finally:
        done.set()
        saver.join()
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"watching {dev_dir}: 1 flow(s) registered")
    assert "default/order: new version" in result.stdout
    assert "could not be moved to the new version" in result.stdout
    assert f"{waiting} WAITING  seq 3: renamed: step('fetch_price') -> step('lookup_price')" in result.stdout
