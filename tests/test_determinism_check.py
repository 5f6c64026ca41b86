"""The static determinism check: it finds each listed pattern at the right line in the
corpus (``tests/flows/determinism/``, see its README), and stays quiet on replay-safe
code, on the examples and on every seed flow."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.determinism import ALLOW_MARKER, Finding, scan_file, scan_source

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "flows" / "determinism"
MARK = "# <- found"

#: what each pattern's findings tell the author to use instead
REPLACEMENTS = {
    "clock": "this.now()", "datetime": "this.now()", "random": "this.random()", "uuid": "this.uuid()",
    "environ": "this.step(...)", "open": "this.step(...)", "network": "this.step(...)", "set_loop": "sorted(",
    "threads": "child flows (this.flow(..., wait=False) and this.wait_for)",
}
LINE = re.compile(r"^(?P<file>.+\.py):(?P<line>\d+): (?P<what>.+); use (?P<use>.+) instead$")


def marked_lines(path: Path) -> set[int]:
    return {n for n, text in enumerate(path.read_text().splitlines(), 1) if MARK in text}


@pytest.mark.parametrize("pattern", sorted(REPLACEMENTS))
def test_each_pattern_is_found_at_its_line_with_its_replacement(pattern: str) -> None:
    path = CORPUS / f"{pattern}_bad.py"
    findings = scan_file(path)
    assert {f.line for f in findings} == marked_lines(path) != set()
    for f in findings:
        assert f.file == str(path)
        assert REPLACEMENTS[pattern] in f.use, f.text()
        assert LINE.match(f.text()), f.text()


@pytest.mark.parametrize("pattern", sorted(REPLACEMENTS))
def test_the_replay_safe_version_of_each_pattern_is_clean(pattern: str) -> None:
    assert scan_file(CORPUS / f"{pattern}_ok.py") == []


def test_code_handed_to_step_is_reported_where_it_also_runs_outside_a_step() -> None:
    path = CORPUS / "step_bad.py"
    assert {f.line for f in scan_file(path)} == marked_lines(path)


def test_findings_name_the_resolved_call_and_how_it_was_written() -> None:
    texts = [f.text() for f in scan_file(CORPUS / "clock_bad.py")]
    assert f"{CORPUS / 'clock_bad.py'}:13: time.monotonic() (as mono()) reads the clock" in texts[2]
    [loop] = [f for f in scan_file(CORPUS / "set_loop_bad.py") if f.line == 16]
    assert loop.what.startswith("`{'a', 'b'}` goes in set order") and loop.use == "sorted({'a', 'b'})"


def test_the_comment_silences_the_line_it_is_on() -> None:
    path = CORPUS / "allowed.py"
    assert scan_file(path) == []
    unmarked = path.read_text().replace(ALLOW_MARKER, "")
    assert [f.line for f in scan_source(unmarked, "allowed.py")] == [8, 9, 11]


def test_module_level_code_and_handler_parameters_under_other_names() -> None:
    source = (
        "import uuid\nRUN = uuid.uuid4()\n\n"
        "def unused():\n    return uuid.uuid4()\n\n"
        "def handler(s, ex, inputs):\n    for n in {1, 2}:\n        ex.log(n)\n"
    )
    assert [f.line for f in scan_source(source, "f.py")] == [2, 8]


def test_source_that_does_not_parse_has_no_findings() -> None:
    assert scan_source("def handler(system, this, inputs)\n    time.time()\n", "broken.py") == []


def test_examples_and_seed_flows_are_clean() -> None:
    paths = sorted((ROOT / "examples").rglob("*.py")) + sorted((ROOT / "tests" / "flows" / "seed").rglob("*.py"))
    assert len(paths) > 40
    findings: list[Finding] = [f for p in paths for f in scan_file(p)]
    assert findings == [], "\n".join(f.text() for f in findings)
