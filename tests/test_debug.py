"""`engine debug`: pdb driven through standard input over real recorded executions of
tests/flows/inspect/tally.py, whose step bumps a counter file if it ever runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from engine.api import Engine

FLOWS = Path(__file__).parent / "flows" / "inspect"


@pytest.fixture
def tally(engine: Engine, tmp_path: Path) -> dict[str, str]:
    """Executions of tally: ended well, failed, and waiting on a timer."""
    engine.sync_flows(FLOWS)
    counter = str(tmp_path / "calls")
    ran = {}
    for name, extra in (("ok", {}), ("failed", {"fail": True})):
        ran[name] = engine.start("tally", {"counter": counter, "item": "apple", "qty": 3, **extra})
        engine.run_until_ended(ran[name])
    ran["waiting"] = engine.start("tally", {"counter": counter, "item": "pear", "qty": 2, "pause": 3600})
    engine.worker().run(until=lambda: engine.get(ran["waiting"]).status == "WAITING")
    ran["counter"] = counter
    return ran


def debug(db_url: str, *args: str, commands: str) -> Result:
    return CliRunner().invoke(cli, ["--db", db_url, "debug", *args], input=commands, catch_exceptions=False)


def test_step_through_with_recorded_values_and_no_side_effects(tally: dict[str, str], db_url: str) -> None:
    calls = Path(tally["counter"]).read_text()
    result = debug(db_url, tally["ok"], "--at", "2", commands="next\np price\nnext\nnext\np total\ncontinue\n")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Stopping at seq 2, step('fetch_price'), line 22" in out
    assert '-> price = this.step(fetch_price, path, inputs["item"])' in out
    assert "(Pdb) 41.5\n" in out  # the recorded result of the step
    assert "(Pdb) 124.5\n" in out  # computed from it
    assert out.rstrip().endswith("replay ended ENDED_SUCCESS: total 124.5")
    assert Path(tally["counter"]).read_text() == calls  # the step function did not run


def test_without_at_it_stops_at_the_first_line(tally: dict[str, str], db_url: str) -> None:
    result = debug(db_url, tally["ok"][:6], commands="p inputs['qty']\nwhere\ncontinue\n")
    assert "Stopping at the first line of the handler" in result.stdout
    assert "-> path = inputs[\"counter\"]" in result.stdout
    assert "(Pdb) 3\n" in result.stdout


def test_a_failed_execution_can_be_debugged(tally: dict[str, str], db_url: str) -> None:
    result = debug(db_url, tally["failed"], "--at", "4", commands="p total\nnext\ncontinue\n")
    assert "Stopping at seq 4, setting_save('last_total')" in result.stdout
    assert "(Pdb) 124.5\n" in result.stdout
    assert "replay ended ENDED_ERROR: ValueError: cannot ship 3 apple" in result.stdout


def test_a_waiting_execution_replays_to_the_end_of_its_history(tally: dict[str, str], db_url: str) -> None:
    result = debug(db_url, tally["waiting"], "--at", "3", commands="p price\ncontinue\n")
    assert "(Pdb) 7.25\n" in result.stdout
    assert "reached the end of the recorded history (seq 5); the execution is WAITING there" in result.stdout


def test_a_non_command_seq_stops_at_the_next_command(tally: dict[str, str], db_url: str) -> None:
    result = debug(db_url, tally["ok"], "--at", "6", commands="p total\nquit\n")
    assert "seq 6 (timer_fired) is not a command; stopping at the next one, seq 7" in result.stdout
    assert "-> this.set_output(total=total)" in result.stdout and "(Pdb) 124.5\n" in result.stdout
    assert result.stdout.rstrip().endswith("debugger quit")


def test_a_seq_past_the_end_is_refused(tally: dict[str, str], db_url: str) -> None:
    result = debug(db_url, tally["ok"], "--at", "99", commands="")
    assert result.exit_code == 1
    assert "has no seq 99: its history ends at seq 8" in result.stderr


def test_debugging_new_code_against_the_recorded_values(tally: dict[str, str], db_url: str, tmp_path: Path) -> None:
    changed = tmp_path / "tally.py"
    changed.write_text((FLOWS / "tally.py").read_text().replace("total = price * inputs", "total = 2 * price * inputs"))
    result = debug(db_url, tally["ok"], "--at", "4", "--flow-file", str(changed), commands="p total\ncontinue\n")
    assert f"against {changed}" in result.stdout and "(Pdb) 249.0\n" in result.stdout
