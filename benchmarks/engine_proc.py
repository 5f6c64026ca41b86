"""One engine process for one measurement; run by the ``benchmarks/engine_*.py`` shapes.

``python -m benchmarks.engine_proc COMMAND --db PATH --sync FULL|NORMAL [options]``

Measuring commands print one ``RESULT {json}`` line. ``*-prepare`` commands park
executions durably, print ``READY`` and wait to be SIGKILLed (the crash being recovered
from). ``recover`` is the fresh worker: it constructs Engine and Worker, takes ``t0`` just
before ``Worker.run()`` and works until idle. Flows under ``benchmarks/flows/`` append
timestamps ("marks") to the file named by ``$BENCH_MARKS``; :func:`read_marks` parses it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.api import Engine
from store.postgres import PostgresStore
from store.sqlite import SqliteStore

FLOWS = Path(__file__).resolve().parent / "flows"
MARKS_ENV = "BENCH_MARKS"

#: execution id -> mark name -> list of (wall time.time(), process CPU seconds), file order.
Marks = dict[str, dict[str, list[tuple[float, float]]]]


def read_marks(path: Path) -> Marks:
    """Parse a marks file; a missing file has no marks."""
    marks: Marks = defaultdict(lambda: defaultdict(list))
    if path.exists():
        for line in path.read_text().splitlines():
            execution_id, name, wall, cpu = line.split()
            marks[execution_id][name].append((float(wall), float(cpu)))
    return marks


class WriteCounter:
    """Counts the store's group-commit transactions by wrapping its batch function.

    ``transactions``: ``BEGIN IMMEDIATE``..``COMMIT`` batches; ``writing``: those that changed
    a row (an empty claim writes nothing and syncs nothing); ``units``: commits and store
    transactions submitted (several share one batch under load). Benchmark instrumentation
    only: it wraps a private attribute and changes no behaviour.
    """

    def __init__(self, store: SqliteStore | PostgresStore) -> None:
        self.transactions = self.writing = self.units = 0
        apply_batch = store._group._apply_batch
        writer = store._writer

        def changes() -> int:
            # PostgreSQL's connection has no change counter: every batch counts as writing.
            return int(getattr(writer, "total_changes", self.transactions))

        def counted(items: Sequence[Any]) -> list[Any]:
            before = changes()
            results = apply_batch(items)
            self.transactions += 1
            self.units += len(items)
            self.writing += changes() != before
            return results

        store._group._apply_batch = counted

    def snapshot(self) -> tuple[int, int, int]:
        return self.transactions, self.writing, self.units


def result(payload: dict[str, Any]) -> None:
    print("RESULT " + json.dumps(payload), flush=True)


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def open_engine(args: argparse.Namespace) -> Engine:
    engine = Engine(args.db, synchronous=args.sync)
    engine.sync_flows(FLOWS)
    return engine


def run_until(engine: Engine, done: Callable[[], bool], concurrency: int = 16) -> None:
    """An embedded worker until ``done()``."""
    engine.worker(concurrency=concurrency).run(until=done, max_store_failures=3)


def ended(engine: Engine, ids: list[str]) -> Callable[[], bool]:
    def check() -> bool:
        return all(s.startswith("ENDED") for s in engine.store.statuses(ids).values())
    return check


def all_waiting(engine: Engine, ids: list[str]) -> Callable[[], bool]:
    def check() -> bool:
        return set(engine.store.statuses(ids).values()) == {"WAITING"}
    return check


def park_until_killed() -> None:
    print("READY", flush=True)
    while True:
        time.sleep(3600)


def marks_path() -> Path:
    return Path(os.environ[MARKS_ENV])


# -- commands ---------------------------------------------------------------------


def cmd_record(args: argparse.Namespace) -> None:
    """Per run, one execution of ``bench_record``: µs per step and per log call."""
    engine = open_engine(args)
    warm = engine.start("bench_record", {"steps": 10, "logs": 100})
    run_until(engine, ended(engine, [warm]))
    runs = []
    for _ in range(args.runs):
        eid = engine.start("bench_record", {"steps": args.size, "logs": args.logs})
        run_until(engine, ended(engine, [eid]))
        marks = read_marks(marks_path())[eid]
        (entered, entered_cpu), = marks["entered"]
        (stepped, stepped_cpu), = marks["stepped"]
        (logged, _), = marks["logged"]
        runs.append({
            "step_us": (stepped - entered) / args.size * 1e6,
            "step_cpu_us": (stepped_cpu - entered_cpu) / args.size * 1e6,
            "log_us": (logged - stepped) / args.logs * 1e6,
        })
    result({"runs": runs})


def cmd_throughput(args: argparse.Namespace) -> None:
    """Per run, ``executions`` bench_record executions of ``size`` steps at once."""
    engine = open_engine(args)
    warm = engine.start("bench_record", {"steps": 10})
    run_until(engine, ended(engine, [warm]))
    counter = WriteCounter(engine.store)
    runs = []
    for _ in range(args.runs):
        ids = [engine.start("bench_record", {"steps": args.size}) for _ in range(args.executions)]
        before = counter.snapshot()
        run_until(engine, ended(engine, ids), concurrency=args.executions)
        after = counter.snapshot()
        marks = read_marks(marks_path())
        first = min(marks[i]["entered"][0][0] for i in ids)
        last = max(marks[i]["stepped"][0][0] for i in ids)
        cpu = max(marks[i]["stepped"][0][1] for i in ids) - min(marks[i]["entered"][0][1] for i in ids)
        steps = args.size * len(ids)
        runs.append({
            "steps_per_s": steps / (last - first),
            "cpu_us": cpu / steps * 1e6,
            "per_transaction": (after[2] - before[2]) / max(1, after[1] - before[1]),
        })
    result({"runs": runs})


def cmd_children(args: argparse.Namespace) -> None:
    """Per run, one bench_fanout parent of ``size`` children on an embedded worker."""
    engine = open_engine(args)
    warm = engine.start("bench_fanout", {"n": 5})
    run_until(engine, ended(engine, [warm]))
    counter = WriteCounter(engine.store)
    runs = []
    for _ in range(args.runs):
        before = counter.snapshot()
        parent = engine.start("bench_fanout", {"n": args.size})
        run_until(engine, ended(engine, [parent]))
        after = counter.snapshot()
        marks = read_marks(marks_path())[parent]
        runs.append({
            "total_s": marks["joined"][-1][0] - marks["entered"][0][0],
            "transactions": after[0] - before[0],
            "writing": after[1] - before[1],
            "units": after[2] - before[2],
            "activations": len(marks["entered"]),
        })
    result({"runs": runs, "peak_rss_kib": peak_rss_kib()})


def cmd_replay_prepare(args: argparse.Namespace) -> None:
    """One bench_replay execution of ``size`` steps, parked on its timer."""
    engine = open_engine(args)
    eid = engine.start("bench_replay", {"k": args.size, "delay": args.delay})
    run_until(engine, lambda: engine.get(eid).status == "WAITING")
    print(f"DUE {engine.get(eid).wake_at!r}", flush=True)
    park_until_killed()


def cmd_restart_prepare(args: argparse.Namespace) -> None:
    """``size`` bench_sleeper executions parked on timers all due at ``due_at``."""
    engine = open_engine(args)
    ids = [engine.start("bench_sleeper", {"due_at": args.due_at}) for _ in range(args.size)]
    run_until(engine, all_waiting(engine, ids))
    if time.time() >= args.due_at:
        raise RuntimeError(f"parking {args.size} sleepers outlasted their timers; raise the delay")
    park_until_killed()


def cmd_idle_prepare(args: argparse.Namespace) -> None:
    """Bring the number of bench_idle executions waiting for an answer up to ``size``."""
    engine = open_engine(args)
    waiting = engine.store.count_by_status().get("WAITING", 0)
    started = time.perf_counter()
    starter = threading.Thread(
        target=lambda: [engine.start("bench_idle") for _ in range(args.size - waiting)]
    )
    starter.start()  # start them while a worker runs the first ones until they wait
    run_until(engine, lambda: not starter.is_alive())
    # Until idle: nothing queued or running, and a message wait has no timer.
    engine.worker(concurrency=16).run(until_idle=True, max_store_failures=3)
    waiting = engine.store.count_by_status().get("WAITING", 0)
    result({"waiting": waiting, "seconds": time.perf_counter() - started})


def cmd_recover(args: argparse.Namespace) -> None:
    """A fresh worker on a crashed database, from ``Worker.run()`` until idle."""
    engine = Engine(args.db, synchronous=args.sync)
    worker = engine.worker(concurrency=args.concurrency, poll_interval=args.poll)
    t0 = time.time()
    worker.run(until_idle=True, max_store_failures=3)
    result({"t0": t0, "done": time.time(), "peak_rss_kib": peak_rss_kib()})


COMMANDS: dict[str, Callable[[argparse.Namespace], None]] = {
    "record": cmd_record,
    "throughput": cmd_throughput,
    "children": cmd_children,
    "replay-prepare": cmd_replay_prepare,
    "restart-prepare": cmd_restart_prepare,
    "idle-prepare": cmd_idle_prepare,
    "recover": cmd_recover,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.engine_proc")
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--db", required=True, help="a SQLite path or a postgresql:// URL")
    parser.add_argument("--sync", choices=("FULL", "NORMAL"), required=True)
    parser.add_argument("--size", type=int, default=1, help="steps, children or executions")
    parser.add_argument("--logs", type=int, default=0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--executions", type=int, default=16)
    parser.add_argument("--delay", type=float, default=0.2, help="replay: the timer, s")
    parser.add_argument("--due-at", type=float, default=0.0, help="restart: shared due time")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--poll", type=float, default=0.005)
    args = parser.parse_args()
    COMMANDS[args.command](args)
    sys.stdout.flush()
    os._exit(0)  # parked activations and pools need no orderly shutdown


if __name__ == "__main__":
    main()
