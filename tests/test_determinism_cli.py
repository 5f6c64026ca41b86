"""``engine check``, ``flows sync``, ``run`` and ``dev`` run the determinism check: each
finding is one line on stderr and the command goes on (exit 0); with ``--strict`` the
command refuses with a one-line error (exit 1) before it registers or starts anything."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from engine.api import Engine
from engine.determinism import ALLOW_MARKER
from engine.devloop import DevReport, dev_loop

LINE = re.compile(r"^(?P<file>.+\.py):(?P<line>\d+): (?P<what>.+); use (?P<use>.+) instead$")

CLOCK_FLOW = """import time

import flow_api


def handler(system, this, inputs):
    this.log(f"began {time.time()}")
    return this.success("logged")
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A flows folder with one flow that reads the clock (line 7) and one that is clean."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "stamp.py").write_text(CLOCK_FLOW)
    (flows / "clean.py").write_text(CLOCK_FLOW.replace("time.time()", "this.now()"))
    return flows


def warning_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if LINE.match(line)]


def assert_refused(result: Result, consequence: str) -> None:
    assert result.exit_code == 1
    error = result.stderr.splitlines()[-1]
    assert error.startswith("Error: --strict: 1 line(s) of ") and consequence in error and ALLOW_MARKER in error


def test_check_warns_and_strict_fails(folder: Path, run_cli: Callable[..., Result]) -> None:
    stamp = str(folder / "stamp.py")
    warned = run_cli("check", stamp)
    assert warned.exit_code == 0, warned.stderr
    assert warning_lines(warned) == [f"{stamp}:7: time.time() reads the clock, which differs between runs; use this.now() instead"]
    assert "no in-flight executions" in warned.stdout
    as_json = run_cli("check", stamp, "--json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)[0]["ok"] and len(warning_lines(as_json)) == 1
    assert_refused(run_cli("check", stamp, "--strict"), "the check fails")
    clean = run_cli("check", str(folder / "clean.py"), "--strict")
    assert clean.exit_code == 0 and clean.stderr == ""


def test_strict_accepts_a_line_with_the_comment(folder: Path, run_cli: Callable[..., Result]) -> None:
    stamp = folder / "stamp.py"
    stamp.write_text(CLOCK_FLOW.replace("time.time()}\")", f"time.time()}}\")  # {ALLOW_MARKER}"))
    result = run_cli("check", str(stamp), "--strict")
    assert result.exit_code == 0 and result.stderr == ""


def test_flows_sync_warns_and_registers_and_strict_registers_nothing(
    folder: Path, run_cli: Callable[..., Result], engine: Engine
) -> None:
    refused = run_cli("flows", "sync", str(folder), "--strict")
    assert_refused(refused, "no flow was registered")
    assert warning_lines(refused) == [f"{folder / 'stamp.py'}:7: time.time() reads the clock, which differs between runs; use this.now() instead"]
    assert engine.store.list_flows() == []
    synced = run_cli("flows", "sync", str(folder))
    assert synced.exit_code == 0 and len(warning_lines(synced)) == 1
    assert sorted(f.name for f in engine.store.list_flows()) == ["clean", "stamp"]


def test_run_warns_and_runs_and_strict_starts_nothing(
    folder: Path, run_cli: Callable[..., Result], engine: Engine
) -> None:
    stamp = str(folder / "stamp.py")
    assert_refused(run_cli("run", stamp, "--strict"), "nothing was registered or started")
    assert engine.store.list_flows() == [] and json.loads(run_cli("ls", "--json").stdout) == []
    ran = run_cli("run", stamp)
    assert ran.exit_code == 0 and " ENDED_SUCCESS" in ran.stdout
    assert warning_lines(ran) == [f"{stamp}:7: time.time() reads the clock, which differs between runs; use this.now() instead"]
    by_name = run_cli("run", "stamp", "--strict")  # the registered version's source is checked
    assert_refused(by_name, "the execution was not started")
    assert warning_lines(by_name)[0].endswith(":7: time.time() reads the clock, which differs between runs; use this.now() instead")
    assert len(json.loads(run_cli("ls", "--json").stdout)) == 1
    assert run_cli("run", "clean", "--strict").exit_code == 0


def test_dev_strict_refuses_a_folder_with_findings(folder: Path, run_cli: Callable[..., Result], engine: Engine) -> None:
    result = run_cli("dev", str(folder), "--strict", "--exit-after", "1")
    assert_refused(result, "the folder was not synced")
    assert len(warning_lines(result)) == 1 and engine.store.list_flows() == []


@pytest.mark.parametrize("strict", [False, True])
def test_dev_reports_the_findings_of_each_save_and_strict_skips_that_save(
    folder: Path, engine: Engine, strict: bool
) -> None:
    (folder / "stamp.py").unlink()
    reports: list[DevReport] = []
    seen = threading.Condition()
    stop = threading.Event()

    def on_report(report: DevReport) -> None:
        with seen:
            reports.append(report)
            seen.notify_all()

    def save_until_reported(source: str) -> DevReport:
        """Save (a new version each time) until the watcher reports a round after this call."""
        before, saves = len(reports), 0
        with seen:
            while not seen.wait_for(lambda: len(reports) > before, timeout=0.5):
                saves += 1
                assert saves < 200, "the watcher never reported a save"
                (folder / "clean.py").write_text(f"{source}# save {saves}\n")
            return reports[before]

    loop = threading.Thread(target=dev_loop, args=(engine, folder, on_report),
                            kwargs={"stop": stop, "strict": strict, "worker_options": {"poll_interval": 0.05}})
    loop.start()
    try:
        with seen:
            assert seen.wait_for(lambda: bool(reports), timeout=120)
        assert reports[0].first and reports[0].findings == []
        first_version = engine.store.get_flow("clean")
        bad = save_until_reported(CLOCK_FLOW)
        assert [(Path(f.file).name, f.line) for f in bad.findings] == [("clean.py", 7)]
        if strict:
            assert bad.error and "the folder was not synced" in bad.error and bad.synced == []
            assert engine.store.get_flow("clean") == first_version
        else:
            assert bad.error is None and [s.name for s in bad.synced] == ["clean"]
        fixed = save_until_reported(CLOCK_FLOW.replace("time.time()", "this.now()"))
        assert fixed.error is None and fixed.findings == [] and [s.name for s in fixed.synced] == ["clean"]
    finally:
        stop.set()
        loop.join(timeout=60)
