"""Rendering: tables for the terminal and RESULTS.md, with the machine they ran on."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import sqlite3
import subprocess
from pathlib import Path

from benchmarks.harness import (
    BENCHMARK_ORDER,
    KIND_ORDER,
    TARGETS,
    Contribution,
    Row,
    Target,
)

HEADER = ("subject", "sync", "metric", "median (min–max)", "n", "ratio")


def number(value: float) -> str:
    """About three significant digits, thousands separated."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def cells(row: Row) -> tuple[str, ...]:
    """One table line's cells for a row."""
    spread = f"{number(row.median)} {row.unit} ({number(row.min)}–{number(row.max)})"
    ratio = f"×{number(row.ratio)} {row.ratio_to}" if row.ratio is not None else ""
    return (row.subject, row.durability, row.metric, spread, str(row.n), ratio)


def ordered(rows: list[Row]) -> list[Row]:
    """Reference rows first, then engine, then peers; stable within each kind."""
    return sorted(rows, key=lambda row: KIND_ORDER[row.kind])


def table(rows: list[Row]) -> str:
    """A markdown table, padded so it also reads well in a terminal."""
    lines = [HEADER, *(cells(row) for row in ordered(rows))]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]

    def render(line: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([render(lines[0]), rule, *(render(line) for line in lines[1:])])


def _measured(goal: Target, row: Row) -> str:
    if goal.on_ratio:
        return f"×{number(row.ratio)} {row.ratio_to}" if row.ratio is not None else "no limit row"
    return f"{number(row.median)} {row.unit}".rstrip()


def targets_table(tables: dict[str, list[Row]], targets: list[Target] | None = None) -> str:
    """A markdown table of target, measured value and verdict; empty when none applies."""
    lines = [("target", "row", "measured", "met")]
    for goal in TARGETS if targets is None else targets:
        if goal.benchmark not in tables:
            if goal.absent:
                lines.append((goal.label, f"{goal.benchmark}: {goal.metric}", goal.absent, "—"))
            continue
        found = goal.find(tables[goal.benchmark])
        if found is None and not any(r.subject == goal.subject for r in tables[goal.benchmark]):
            continue  # its subject did not run (``python -m benchmarks postgres``)
        if found is None:
            lines.append((goal.label, f"{goal.benchmark}: {goal.metric}", "not measured", "—"))
            continue
        found = goal.judged(found, tables)
        verdict = goal.met(found)
        mark = "—" if verdict is None else "yes" if verdict else "**no**"
        lines.append((goal.label, f"{goal.benchmark}: {found.subject}, {found.metric}",
                      _measured(goal, found), mark))
    if len(lines) == 1:
        return ""
    widths = [max(len(line[i]) for line in lines) for i in range(4)]

    def render(line: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([render(lines[0]), rule, *(render(line) for line in lines[1:])])


def missed_targets(tables: dict[str, list[Row]]) -> list[str]:
    """For each target this run missed: why, and what would close it (``Target.if_missed``)."""
    out: list[str] = []
    for goal in TARGETS:
        found = goal.find(tables.get(goal.benchmark, []))
        if found is None or goal.met(goal.judged(found, tables)) is not False or not goal.if_missed:
            continue
        out += ["", f"### Missed: {goal.label}", "", goal.if_missed.strip()]
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _filesystem(path: Path) -> str:
    """Device, filesystem type and mount point of the mount holding ``path``."""
    target = str(path.resolve())
    best = ("unknown", "unknown", "")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, fstype = line.split()[:3]
            inside = target == mount or target.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) >= len(best[2]):
                best = (device, fstype, mount)
    except OSError:
        pass
    return f"{best[0]} ({best[1]}, mounted at {best[2] or '?'})"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


ENGINE_CODE = ("engine", "store", "flow_api", "cli")


def engine_code() -> str:
    """An identity of the engine's code: the git trees of its packages, and any uncommitted
    change to them. A commit that touches only docs or tests leaves it as it was."""
    repo = Path(__file__).resolve().parent.parent
    try:
        trees = subprocess.run(["git", "rev-parse", *(f"HEAD:{p}" for p in ENGINE_CODE)], cwd=repo,
                               check=True, capture_output=True, text=True).stdout
        diff = subprocess.run(["git", "diff", "HEAD", "--", *ENGINE_CODE], cwd=repo, check=True,
                              capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return trees + diff


def engine_commit() -> str:
    """HEAD of the repository, and whether the engine's code differs from it."""
    repo = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *ENGINE_CODE], cwd=repo, check=True,
                               capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head} (with uncommitted engine changes)" if dirty else head


def environment(tmp: Path) -> list[tuple[str, str]]:
    """Machine and library facts for the RESULTS.md header."""
    return [
        ("CPU", f"{_cpu_model()}, {os.cpu_count()} cores"),
        ("RAM", _ram()),
        ("Scratch disk", f"{_filesystem(tmp)}, the repository's disk"),
        ("OS", platform.platform()),
        ("Python", platform.python_version()),
        ("SQLite", sqlite3.sqlite_version),
        ("msgspec", _version("msgspec")),
        ("dbos", _version("dbos")),
        ("Engine commit", engine_commit()),
        ("Date", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
    ]


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as `uptime` shows them."""
    try:
        return ", ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def load_line(load: tuple[str, str]) -> str:
    """The header line giving the load average at the start and the end of the run."""
    return (f"- **Load average** (1, 5, 15 min): {load[0]} at the start, {load[1]} at the end "
            f"({os.cpu_count()} cores; other processes share this machine)")


def results_markdown(
    command: str,
    tmp: Path,
    tables: dict[str, list[Row]],
    contributions: dict[str, list[Contribution]],
    notes: list[str],
    load: tuple[str, str] | None = None,
) -> str:
    """The whole RESULTS.md: header, then per benchmark its table and method paragraphs."""
    out = [
        "# Benchmark results",
        "",
        "Generated by `python -m benchmarks`; do not edit by hand.",
        "",
        *(f"- **{key}**: {value}" for key, value in environment(tmp)),
        *([load_line(load)] if load else []),
        f"- **Command**: `{command}`",
        "",
        "Each figure is the median of its runs, with the smallest and largest run in",
        "brackets; *n* is the number of runs (or of trials, for percentiles). *ratio* divides",
        "the median by a `limit` row measured in the same run.",
    ]
    if notes:
        out += ["", "Notes from this run:", "", *(f"- {note}" for note in notes)]
    goals = targets_table(tables)
    if goals:
        out += ["", "## Targets", "", "At the engine's default durability (FULL) unless a target names NORMAL,",
                "read from the tables below; ratios are to rows of the same run.", "", goals]
        out += missed_targets(tables)
    for name in BENCHMARK_ORDER:
        if name not in tables:
            continue
        out += ["", f"## {name}", "", table(tables[name]), "", "### Method", ""]
        for contribution in contributions.get(name, []):
            out += [f"**{contribution.group}**: {contribution.method}", ""]
    return "\n".join(out).rstrip() + "\n"
