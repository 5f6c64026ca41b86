"""``python -m benchmarks [NAME...] [--quick] [--tiny] [--only-peers] [--no-write]``.

NAME selects benchmarks (``record``, ``wake``, ...) or contributor groups (``dbos``,
``engine``); none selects everything. The ``limit`` always runs first, since every other
table is read against it. Prints one table per benchmark and rewrites
``benchmarks/RESULTS.md`` unless ``--no-write`` is given or a contributor failed.

``python -m benchmarks cost ...`` counts instructions instead (``benchmarks/cost.py``).
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import time
import traceback
from pathlib import Path

from benchmarks import cost
from benchmarks.harness import BENCHMARK_ORDER, BENCHMARKS, COST, Context, Contribution, Row
from benchmarks.report import (
    engine_code,
    engine_commit,
    load_average,
    results_markdown,
    table,
    targets_table,
)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
#: Modules whose import registers contributors. An engine-shapes module adds itself here.
CONTRIBUTOR_MODULES = ("benchmarks.raw_sqlite", "benchmarks.raw_pg", "benchmarks.engine_shapes", "benchmarks.pg_engine",
                       "benchmarks.peer_dbos", "benchmarks.pg_dbos")


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse the command line; names are checked against the registry."""
    groups = sorted({c.group for contribs in BENCHMARKS.values() for c in contribs})
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME",
        help=f"benchmarks {', '.join(BENCHMARK_ORDER)} or groups {', '.join(groups)}",
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, 3 runs per figure")
    parser.add_argument(
        "--tiny", action="store_true", help="smoke-test sizes; figures are not meaningful"
    )
    parser.add_argument(
        "--only-peers", action="store_true", help="skip engine rows (the limit still runs)"
    )
    parser.add_argument("--no-write", action="store_true", help="do not rewrite RESULTS.md")
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(BENCHMARK_ORDER) - set(groups)
    if unknown:
        parser.error(f"unknown name(s) {', '.join(sorted(unknown))}; choose from "
                     f"{', '.join(BENCHMARK_ORDER)} or {', '.join(groups)}")
    return args


def selected(args: argparse.Namespace) -> list[tuple[str, Contribution]]:
    """(benchmark, contribution) pairs to run, in table order; the limit always included."""
    chosen: list[tuple[str, Contribution]] = []
    for name in BENCHMARK_ORDER:
        for contribution in BENCHMARKS.get(name, []):
            wanted = not args.names or name in args.names or contribution.group in args.names
            if args.only_peers and contribution.kind == "engine":
                wanted = False
            if wanted or contribution.kind == "reference":
                chosen.append((name, contribution))
    return chosen


def main(argv: list[str]) -> int:
    """Run the selected benchmarks; return the process exit code."""
    if argv[:1] == ["cost"]:
        return cost.main(argv[1:])
    for module in CONTRIBUTOR_MODULES:
        importlib.import_module(module)
    args = parse(argv)
    load_at_start, commit_at_start, code_at_start = load_average(), engine_commit(), engine_code()
    tmp = HERE / ".tmp" / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    ctx = Context(quick=args.quick, tiny=args.tiny, tmp=tmp)
    tables: dict[str, list[Row]] = {}
    failures: list[str] = []
    plan = selected(args)
    try:
        for index, (name, contribution) in enumerate(plan):
            print(f"-- {name}: {contribution.group}", file=sys.stderr, flush=True)
            started = time.perf_counter()
            try:
                rows = contribution.fn(ctx)
            except Exception:
                traceback.print_exc()
                failures.append(f"{name}/{contribution.group}")
                rows = []
            tables.setdefault(name, []).extend(rows)
            print(f"   {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
            last_of_table = index + 1 == len(plan) or plan[index + 1][0] != name
            if last_of_table and tables[name]:
                print(f"\n## {name}\n\n{table(tables[name])}\n", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if engine_code() != code_at_start:
        ctx.note(f"the engine's code changed during this run ({commit_at_start} at the start, "
                 f"{engine_commit()} at the end): the figures mix both; run again")
    kept = cost.kept_section(RESULTS.read_text()) if RESULTS.exists() else ""
    counted = cost.rows(kept)  # instructions, read from the last `cost` run: no run here
    judged = {**tables, COST: counted} if counted else tables
    goals = targets_table(judged)
    if goals:
        print(f"\n## Targets\n\n{goals}\n", flush=True)
    if failures:
        print(f"failed: {', '.join(failures)}; RESULTS.md left unchanged", file=sys.stderr)
        return 1
    if not args.no_write:
        command = " ".join(["python -m benchmarks", *argv])
        contributions = {name: [c for n, c in plan if n == name] for name in tables}
        text = results_markdown(command, tmp, judged, contributions, ctx.notes, (load_at_start, load_average()))
        RESULTS.write_text(cost.with_section(text, kept) if kept else text)
        print(f"wrote {RESULTS.relative_to(HERE.parent)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
