"""The benchmark harness runs end to end at tiny sizes; no timing is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_benchmarks(*names: str) -> subprocess.CompletedProcess[str]:
    """``python -m benchmarks --quick --tiny --no-write NAMES`` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--tiny", "--no-write", *names],
        capture_output=True, text=True, cwd=REPO, timeout=300, check=False,
    )


def test_limit_prints_its_table() -> None:
    done = run_benchmarks("limit")
    assert done.returncode == 0, done.stderr
    assert "## limit" in done.stdout
    for metric in ("commit (1 row)", "batched insert", "range scan"):
        assert metric in done.stdout
    assert "raw sqlite" in done.stdout


def test_unknown_name_is_refused() -> None:
    done = run_benchmarks("no-such-benchmark")
    assert done.returncode == 2
    assert "unknown name" in done.stderr


def test_record_prints_engine_rows_against_the_limit() -> None:
    done = run_benchmarks("record")
    assert done.returncode == 0, done.stderr
    assert "## record" in done.stdout
    engine_rows = [line for line in done.stdout.splitlines() if line.startswith("| engine ")]
    metrics = {"per step", "CPU per step", "this.log per call"}
    for sync in ("FULL", "NORMAL"):
        found = {m for m in metrics for line in engine_rows if f"| {sync} " in line and f"| {m} " in line}
        assert found == metrics, f"engine {sync} rows missing: {sorted(metrics - found)}"
    assert "commit (1 row) FULL" in done.stdout  # the ratio to the raw limit
    assert "## Targets" in done.stdout


def test_the_full_run_keeps_the_cost_section_of_results() -> None:
    from benchmarks import cost

    section = f"{cost.BEGIN}\n## cost\n\n| per unit | abc |\n{cost.END}"
    old = f"# Benchmark results\n\nold tables\n\n{section}\n"
    assert cost.kept_section(old) == section
    rewritten = cost.with_section("# Benchmark results\n\nnew tables\n", cost.kept_section(old))
    assert rewritten.endswith(section + "\n") and "new tables" in rewritten and "old tables" not in rewritten
    newer = section.replace("abc", "def")
    assert cost.with_section(rewritten, newer).count(cost.BEGIN) == 1  # replaced, not appended twice


@pytest.mark.soak
def test_cost_counts_instructions_per_unit() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "cost", "--steps", "5", "--short", "3", "--no-write"],
        capture_output=True, text=True, cwd=REPO, timeout=900, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "durable step" in done.stdout and "short execution" in done.stdout


def test_wake_prints_the_one_process_rows_with_and_without_the_warm_cache() -> None:
    done = run_benchmarks("wake")
    assert done.returncode == 0, done.stderr
    assert "failed:" not in done.stdout + done.stderr
    assert "| engine, one process " in done.stdout and "| engine, one process, --no-warm-cache " in done.stdout


def test_targets_read_instructions_from_the_cost_section_and_ratios_to_another_row() -> None:
    from benchmarks import cost
    from benchmarks.harness import COST, Row, Target
    from benchmarks.report import targets_table

    section = "\n".join([
        cost.BEGIN, "## cost", "",
        f"| per unit | {cost.BASELINE} | abc1234 | {cost.BASELINE} / abc1234 |",
        "|---|---|---|---|",
        f"| {cost.SHAPES[0][1]} | 341,676 | 100,000 | ×3.42 |",
        f"| {cost.SHAPES[1][1]} | 1,356,632 | 1,000,000 | ×1.36 |",
        cost.END,
    ])
    (step, short) = cost.rows(f"# Benchmark results\n\n{section}\n")
    assert (step.benchmark, step.median) == (COST, 3.42) and short.median == 1.36
    assert cost.rows(section.replace(cost.BASELINE, "0000000")) == []  # not against the baseline

    wake = Row("wake", "engine, one process", "FULL", "p50", "ms", 3.0, 2.0, 4.0, 50)
    commit = Row("wake", "raw", "FULL", "commit", "ms", 1.5, 1.0, 2.0, 50, "reference")
    goal = Target("wake ≤ 1.5× a commit", "wake", wake.subject, "FULL", "p50", 1.5, on_ratio=True,
                  per=("wake", "raw", "FULL", "commit"))
    assert goal.met(goal.judged(wake, {"wake": [wake, commit]})) is False  # 2× a commit
    assert goal.met(goal.judged(wake, {"wake": [wake]})) is None  # no commit measured: no verdict
    missing = Target("instructions", COST, "engine", "n/a", step.metric, 3, at_least=True, absent="see cost")
    assert "see cost" in targets_table({"wake": [wake]}, [missing])
    assert "| yes " in targets_table({COST: [step]}, [missing])
