"""`engine replay`, `engine check`, exported histories and flow_api.testing on real
executions of tests/flows/inspect/order.py, changed in each of the five ways."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from engine.api import Engine
from engine.inspect import file_code, recorded, replay
from flow_api.testing import assert_replays, history_files, replay_history

ORDER = Path(__file__).parent / "flows" / "inspect" / "order.py"
SOURCE = ORDER.read_text()
FETCH = 'price = this.step(fetch_price, inputs["item"])'
RESERVE = 'reservation = this.step(reserve, inputs["item"], inputs["qty"])'
NOTIFY = 'this.step(notify, f"reserved {reservation}")'

#: name -> (changed source, seq, recorded line text, new line text, cause)
CHANGES = {
    "reorder": (SOURCE.replace(f"    {FETCH}\n    {RESERVE}", f"    {RESERVE}\n    {FETCH}"), 3, FETCH, RESERVE, "reordered"),
    "rename": (SOURCE.replace("fetch_price", "lookup_price"), 3, FETCH, FETCH.replace("fetch", "lookup"), "renamed"),
    "add": (SOURCE.replace(f"    {FETCH}", f'    this.step(check_stock, inputs["item"])\n    {FETCH}')
            .replace("def notify", "def check_stock(item):\n    return True\n\n\ndef notify"),
            3, FETCH, 'this.step(check_stock, inputs["item"])', "added"),
    "remove": (SOURCE.replace(RESERVE, "reservation = None"), 4, RESERVE,
               "this.set_output(price=price, reservation=reservation)", "removed"),
    "arguments": (SOURCE.replace(RESERVE, RESERVE.replace('inputs["qty"]', 'inputs["qty"] + 1')), 4, RESERVE,
                  RESERVE.replace('inputs["qty"]', 'inputs["qty"] + 1'), "changed arguments"),
}


@pytest.fixture
def orders(engine: Engine) -> tuple[str, str]:
    """(an ended order, an order WAITING on a one-hour timer after seq 6)."""
    engine.register_file(ORDER)
    ended = engine.start("order", {"item": "apple", "qty": 2})
    assert engine.run_until_ended(ended).status == "ENDED_SUCCESS"
    waiting = engine.start("order", {"item": "pear", "qty": 1, "pause": 3600})
    engine.worker().run(until=lambda: engine.get(waiting).status == "WAITING")
    return ended, waiting


def write_flow(tmp_path: Path, source: str, folder: str = "new") -> Path:
    path = tmp_path / folder / "order.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(source)
    return path


@pytest.mark.parametrize("change", list(CHANGES))
def test_replay_and_check_name_the_seq_both_lines_and_the_cause(
    change: str, orders: tuple[str, str], run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    source, seq, old_line, new_line, cause = CHANGES[change]
    path = write_flow(tmp_path, source)
    ended, waiting = orders
    for execution in (ended, waiting):
        result = run_cli("replay", execution, "--flow-file", str(path))
        assert result.exit_code == 1, result.output
        assert f"diverges at seq {seq}" in result.stdout
        assert old_line in result.stdout and new_line in result.stdout
        assert f"cause     {cause}:" in result.stdout
    data = json.loads(run_cli("replay", ended, "--flow-file", str(path), "--json").stdout)
    d = data["divergence"]
    assert (data["consistent"], d["seq"], d["cause"]) == (False, seq, cause)
    assert (d["recorded"]["source"], d["new"]["source"]) == (old_line, new_line)
    assert d["recorded"]["seq"] == seq and d["recorded"]["line"] > 0 and d["new"]["line"] > 0
    checked = run_cli("check", str(path))
    assert checked.exit_code == 1
    assert f"{waiting} WAITING  seq {seq}: {cause}:" in checked.stdout
    assert old_line in checked.stdout and new_line in checked.stdout
    assert ended not in checked.stdout  # ended executions are not in flight


def test_unchanged_code_is_consistent(orders: tuple[str, str], run_cli: Callable[..., Result], tmp_path: Path) -> None:
    ended, waiting = orders
    result = run_cli("replay", ended)
    assert result.exit_code == 0 and result.stdout.startswith("consistent")
    assert "ended ENDED_SUCCESS" in result.stdout
    assert "would go on live after seq 6" in run_cli("replay", waiting[:6]).stdout
    same = write_flow(tmp_path, SOURCE)
    checked = run_cli("check", str(same), "--json")
    assert checked.exit_code == 0
    assert json.loads(checked.stdout)[0]["ok"] is True


def test_a_change_past_the_in_flight_point_breaks_only_the_ended_execution(
    orders: tuple[str, str], run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    ended, _ = orders
    path = write_flow(tmp_path, SOURCE.replace(f"    {NOTIFY}\n", ""))
    checked = run_cli("check", str(path))
    assert checked.exit_code == 0, checked.stdout
    assert "all 1 in-flight execution(s) would replay" in checked.stdout
    result = run_cli("replay", ended, "--flow-file", str(path))
    assert result.exit_code == 1
    assert "diverges at seq 8" in result.stdout and NOTIFY in result.stdout
    assert "the end of the handler (ENDED_SUCCESS)" in result.stdout and "cause     removed" in result.stdout


def test_replay_touches_nothing(engine: Engine, orders: tuple[str, str], tmp_path: Path) -> None:
    """New code that starts a child and saves a setting where the history has neither
    is replayed (strictly, then leniently to classify) without a write to the store."""
    ended, _ = orders
    path = write_flow(tmp_path, SOURCE.replace(
        f"    {FETCH}", f'    system.setting("touched").save(value=1)\n    this.flow("order", item="x", qty=0)\n    {FETCH}'
    ))
    before = (len(engine.store.list_executions()), engine.store.list_settings(), engine.history(ended))
    result = replay(recorded(engine, ended), file_code(path))
    assert result.divergence is not None and result.divergence.cause == "added"
    assert (len(engine.store.list_executions()), engine.store.list_settings(), engine.history(ended)) == before


def test_syncing_a_breaking_change_warns_which_executions_stay_on_their_version(
    orders: tuple[str, str], run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    _, waiting = orders
    folder = write_flow(tmp_path, CHANGES["rename"][0]).parent
    result = run_cli("flows", "sync", str(folder))
    assert result.exit_code == 0
    assert "updated   default/order" in result.stdout
    assert "could not be moved to the new version" in result.stderr
    assert f"{waiting} WAITING  seq 3: renamed" in result.stderr
    again = run_cli("flows", "sync", str(folder))
    assert again.stderr == ""  # unchanged: nothing to report


def test_exported_history_replays_from_the_file(
    orders: tuple[str, str], run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    ended, _ = orders
    exported = run_cli("export", ended)
    data = json.loads(exported.stdout)
    assert data["format"] == "engine-history" and data["flow"]["source"] == SOURCE
    assert [e["kind"] for e in data["events"]][:3] == ["started", "log", "step"]
    history = tmp_path / "histories" / "order-1.json"
    history.parent.mkdir()
    history.write_text(exported.stdout)
    assert run_cli("replay", "--history", str(history)).exit_code == 0
    renamed = write_flow(tmp_path, CHANGES["rename"][0])
    result = run_cli("replay", "--history", str(history), "--flow-file", str(renamed))
    assert result.exit_code == 1 and "renamed" in result.stdout and FETCH in result.stdout
    assert run_cli("replay").exit_code == 2  # neither an id nor --history
    elsewhere = tmp_path / "never" / "engine.db"
    assert run_cli("replay", "--history", str(history), db=str(elsewhere)).exit_code == 0
    assert not elsewhere.parent.exists()  # replaying a file opens no database


def test_flow_api_testing_guards_a_flow_in_ci(orders: tuple[str, str], run_cli: Callable[..., Result], tmp_path: Path) -> None:
    ended, _ = orders
    folder = tmp_path / "histories"
    folder.mkdir()
    run_cli("export", ended, "-o", str(folder / "order-1.json"))
    assert history_files(folder) == [folder / "order-1.json"]
    assert assert_replays(folder / "order-1.json", ORDER.parent).consistent
    assert replay_history(json.loads((folder / "order-1.json").read_text())).ended == "ENDED_SUCCESS"
    reordered = write_flow(tmp_path, CHANGES["reorder"][0])
    with pytest.raises(AssertionError, match=r"(?s)diverges at seq 3.*reordered"):
        assert_replays(folder / "order-1.json", reordered)


def test_replay_of_an_unknown_execution_fails_in_one_line(run_cli: Callable[..., Result]) -> None:
    result = run_cli("replay", "0123abcd")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "no execution '0123abcd'" in result.stderr
