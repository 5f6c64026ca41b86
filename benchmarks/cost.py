"""``python -m benchmarks cost [--against REV] [--steps N] [--short N] [--no-write]``:
instructions per durable step and per short execution, counted by callgrind.

A measure that noise cannot move: on a shared machine wall-clock and CPU-time figures
swing by tens of percent, while the number of instructions a fixed workload executes
moves by a few percent at most. Each workload (``benchmarks/cost_workload.py``) is prepared
natively, then run by one embedded worker (concurrency 1) under
``valgrind --tool=callgrind``; it is run at N and at 2N units and the difference is
divided by N, so the process's start-up (interpreter, imports, opening the database,
compiling the flow) cancels out. ``--against REV`` measures the commit REV the same
way, from a git worktree of it, so a change's effect shows as a ratio.

Results go to the "cost" section of ``benchmarks/RESULTS.md`` (the full run keeps it).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import COST, Row

REPO = Path(__file__).resolve().parent.parent
#: The commit issue 15 was filed at: its targets are ratios to it.
BASELINE = "78d0967"
WORKLOAD = Path(__file__).resolve().with_name("cost_workload.py")
RESULTS = Path(__file__).resolve().with_name("RESULTS.md")
#: Where the instructions go and what was tried (written by hand), kept in the section.
NOTES = Path(__file__).resolve().with_name("cost_notes.md")
#: The engine's packages: compiled to bytecode before measuring, so that no run pays for it.
PACKAGES = ("engine", "store", "flow_api", "cli")

BEGIN = "<!-- cost: written by `python -m benchmarks cost`; the full run keeps this section -->"
END = "<!-- end of cost -->"

#: (shape, what one unit is) in table order.
SHAPES = (
    ("steps", "durable step (`this.step`, trivial body, one commit each)"),
    ("short", "short execution (claim, load, replay, one step, end)"),
)


@dataclass(frozen=True)
class Count:
    """Instructions of one tree's workload at N and at 2N units."""

    n: int
    at_n: int
    at_2n: int

    @property
    def per_unit(self) -> float:
        return (self.at_2n - self.at_n) / self.n

    @property
    def start_up(self) -> float:
        """What the process costs besides the units (start-up and shutdown)."""
        return self.at_n - self.n * self.per_unit


def _env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)  # the engine of this tree, not the installed one
    env["PYTHONHASHSEED"] = "0"
    env.pop("ENGINE_DB", None)
    env.pop("ENGINE_SYNCHRONOUS", None)
    return env


def _python(tree: Path, work: Path, *args: str, valgrind: list[str] | None = None) -> str:
    script = work / WORKLOAD.name  # run from a copy: sys.path[0] then holds nothing of ours
    done = subprocess.run(
        [*(valgrind or []), sys.executable, str(script), *args], cwd=work, env=_env(tree),
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cost workload {' '.join(args)} on {tree} exited {done.returncode}: "
                           f"{done.stderr[-3000:]}")
    return done.stderr


def instructions(tree: Path, work: Path, shape: str, n: int, keep: Path | None) -> int:
    """Instructions callgrind counts for one worker process running ``n`` units of ``shape``."""
    db = work / f"{shape}-{n}.db"
    _python(tree, work, "prepare", shape, str(n), str(db))
    out = (keep or work) / f"callgrind.{tree.name}.{shape}.{n}.out"
    stderr = _python(tree, work, "run", str(db), valgrind=[
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
    ])
    ran = re.search(r"^ENGINE (.*)$", stderr, re.MULTILINE)
    if ran is None or not Path(ran.group(1)).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"the cost workload imported the engine from {ran and ran.group(1)}, not from {tree}")
    found = re.search(r"Collected : ([\d,]+)", stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no instruction count for {shape} on {tree}: {stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def measure(tree: Path, work: Path, sizes: dict[str, int], keep: Path | None) -> dict[str, Count]:
    """Each shape at N and 2N units on ``tree``."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", *PACKAGES], cwd=tree, check=True,
                   env=_env(tree), capture_output=True)
    counts = {}
    for shape, _ in SHAPES:
        n = sizes[shape]
        print(f"-- cost: {shape} on {tree} (N={n} and {2 * n})", file=sys.stderr, flush=True)
        counts[shape] = Count(n, instructions(tree, work, shape, n, keep),
                              instructions(tree, work, shape, 2 * n, keep))
    return counts


def checkout(rev: str, where: Path) -> Path:
    """A detached git worktree of ``rev`` at ``where``."""
    subprocess.run(["git", "worktree", "add", "--detach", "--force", str(where), rev], cwd=REPO,
                   check=True, capture_output=True)
    return where


def short_rev(rev: str) -> str:
    return subprocess.run(["git", "rev-parse", "--short", rev], cwd=REPO, check=True,
                          capture_output=True, text=True).stdout.strip()


def head_label() -> str:
    """This tree: its commit, marked when engine code differs from it."""
    from benchmarks.report import engine_commit  # noqa: PLC0415  (git calls, only when run)

    return engine_commit()


def table(columns: list[tuple[str, dict[str, Count]]]) -> str:
    """Markdown: one row per shape, a column per tree, and the ratio of the first to the last."""
    header = ["per unit", *(label for label, _ in columns)]
    if len(columns) == 2:
        header.append(f"{columns[0][0]} / {columns[1][0]}")
    rows = [header]
    for shape, unit in SHAPES:
        line = [unit, *(f"{counts[shape].per_unit:,.0f}" for _, counts in columns)]
        if len(columns) == 2:
            line.append(f"×{columns[0][1][shape].per_unit / columns[1][1][shape].per_unit:.2f}")
        rows.append(line)
    rows.append(["start-up and shutdown of the worker process (steps workload)",
                 *(f"{counts['steps'].start_up:,.0f}" for _, counts in columns),
                 *([""] if len(columns) == 2 else [])])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    render = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    render.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(render)


def section(columns: list[tuple[str, dict[str, Count]]], command: str) -> str:
    sizes = ", ".join(f"{shape} N={counts.n:,}" for shape, counts in columns[-1][1].items())
    return "\n".join([
        BEGIN,
        "## cost",
        "",
        f"Instructions (callgrind `Ir`) per unit, `{command}`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} ({sizes}):",
        "",
        table(columns),
        "",
        "### Method",
        "",
        "**engine**: " + " ".join((__doc__ or "").split("\n\n")[1].split()) + " The workloads, at "
        "synchronous=NORMAL on a database in a scratch folder: *steps*, one execution making N "
        "sequential `this.step` calls with a trivial body; *short*, N executions of a flow making "
        "one trivial step each, created before the measured process starts (creating them is not "
        "counted). The worker's poll interval and lease are long enough that it wakes only when a "
        "commit tells it to, and time-driven housekeeping (file checks, schedules, cancel checks) "
        "is made rare, so the count depends little on how slowly the run goes under valgrind: "
        "between runs *steps* moves by about 1%, *short* by up to 4% (whether the worker's loop "
        "or the ending commit leases the next execution depends on thread timing). PYTHONHASHSEED=0. "
        "Instructions are not time: a syscall (fsync) or a wait on a lock "
        "counts for little, so read these beside the wall-clock rows above.",
        *(["", NOTES.read_text().strip()] if NOTES.exists() else []),
        END,
    ])


def with_section(text: str, new: str) -> str:
    """``text`` (RESULTS.md) with its cost section replaced by ``new``, or ``new`` appended."""
    start, end = text.find(BEGIN), text.find(END)
    if start >= 0 and end > start:
        return text[:start] + new + text[end + len(END):]
    return text.rstrip() + "\n\n" + new + "\n"


def kept_section(text: str) -> str:
    """The cost section of ``text`` (for the full run to keep), or ''."""
    start, end = text.find(BEGIN), text.find(END)
    return text[start:end + len(END)] if start >= 0 and end > start else ""


def rows(text: str) -> list[Row]:
    """Rows for the Targets table from a cost section measured ``--against`` :data:`BASELINE`:
    per shape, the baseline's instructions per unit divided by this tree's (benchmark
    ``cost``, subject ``engine``, metric ``instructions per <shape>, 78d0967 ÷ this``)."""
    lines = [[c.strip() for c in line.strip().strip("|").split("|")]
             for line in kept_section(text).splitlines() if line.startswith("|")]
    if not lines or len(lines[0]) != 4 or lines[0][1] != BASELINE:
        return []
    found = []
    for _, unit in SHAPES:
        line = next((cells for cells in lines if cells[0] == unit), None)
        if line is not None:
            ratio = float(line[3].lstrip("×"))
            found.append(Row(COST, "engine", "n/a", f"instructions per {unit.split(' (')[0]}, "
                             f"{BASELINE} ÷ this", "×", ratio, ratio, ratio, 1))
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks cost", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--against", metavar="REV", help="also measure this git commit, for a ratio")
    parser.add_argument("--steps", type=int, default=500, help="N for the steps workload (also run at 2N)")
    parser.add_argument("--short", type=int, default=300, help="N for the short workload (also run at 2N)")
    parser.add_argument("--keep", type=Path, help="keep the callgrind output files in this folder")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (Debian: apt-get install valgrind)")
    sizes = {"steps": args.steps, "short": args.short}
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    work = REPO / "benchmarks" / ".tmp" / f"cost-{time.strftime('%Y%m%d-%H%M%S')}"
    work.mkdir(parents=True)
    shutil.copy(WORKLOAD, work / WORKLOAD.name)
    columns: list[tuple[str, dict[str, Count]]] = []
    try:
        if args.against:
            label = short_rev(args.against)
            other = checkout(args.against, work / f"rev-{label}")
            try:
                columns.append((label, measure(other, work, sizes, args.keep)))
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=REPO,
                               check=False, capture_output=True)
        columns.append((head_label(), measure(REPO, work, sizes, args.keep)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    command = " ".join(["python -m benchmarks cost", *argv])
    print(f"\n## cost\n\n{table(columns)}\n", flush=True)
    if not args.no_write:
        RESULTS.write_text(with_section(RESULTS.read_text() if RESULTS.exists() else "", section(columns, command)))
        print(f"wrote {RESULTS.relative_to(REPO)}", file=sys.stderr)
    return 0
