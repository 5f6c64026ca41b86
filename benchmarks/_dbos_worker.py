"""One DBOS process for one measurement; run by :mod:`benchmarks.peer_dbos`.

``python -m benchmarks._dbos_worker COMMAND --db PATH --sync FULL|NORMAL [options]``

Measuring commands print one ``RESULT {json}`` line. The ``*-prepare`` commands print
``READY`` once their workflows are parked durably, then wait to be SIGKILLed; the matching
``*-recover`` command, in a fresh process on a copy of that database, times DBOS.launch()
until the workflows run again. Workflows write their timestamps to module globals, read by
the main thread of the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, DBOSConfig

#: Set by the workflows, read by the main thread.
MARKS: dict[str, float] = {}
REPLAYED = threading.Event()
RESUMED: list[float] = []
RESUMED_LOCK = threading.Lock()
ALL_RESUMED = threading.Event()
EXPECTED = {"workflows": 0}


@DBOS.step()
def trivial_step(i: int) -> int:
    """The cheapest step there is."""
    return i


@DBOS.workflow()
def record_workflow(steps: int) -> int:
    """``steps`` sequential trivial steps."""
    for i in range(steps):
        trivial_step(i)
    return steps


@DBOS.workflow()
def replay_workflow(steps: int) -> None:
    """``steps`` recorded steps, a mark, then a durable wait that never ends."""
    MARKS["entered"] = time.time()
    for i in range(steps):
        trivial_step(i)
    MARKS["replayed"] = time.time()
    REPLAYED.set()
    DBOS.recv("never", timeout_seconds=3600)


#: How long a wake child waits before its last line, so the parent is parked by then.
SETTLE_S = 0.02


@DBOS.workflow()
def wake_child_send(parent_id: str, delay: float) -> None:
    """After ``delay`` s, ends by sending its last-line timestamp to the parent."""
    time.sleep(delay)
    DBOS.send(parent_id, time.time(), topic="done")


@DBOS.workflow()
def wake_child_return(delay: float) -> float:
    """After ``delay`` s, ends by returning its last-line timestamp."""
    time.sleep(delay)
    return time.time()


@DBOS.workflow()
def wake_parent(trials: int, via: str, jitter: float) -> list[float]:
    """Start a child and wait for it ``trials`` times; seconds from child's last line.

    Each child first sleeps (not durably) SETTLE_S plus a random 0..``jitter`` s: the
    parent is parked in its wait by then, and the child ends at a random phase of the
    notification poller rather than phase-locked to it.
    """
    parent_id = DBOS.workflow_id
    assert parent_id is not None, "wake_parent runs as a workflow"
    latencies = []
    for _ in range(trials):
        delay = SETTLE_S + random.uniform(0, jitter)
        if via == "recv":
            DBOS.start_workflow(wake_child_send, parent_id, delay)
            sent = DBOS.recv("done", timeout_seconds=60)
        else:
            sent = DBOS.start_workflow(wake_child_return, delay).get_result()
        latencies.append(time.time() - sent)
    return latencies


@DBOS.workflow()
def child(i: int) -> int:
    """A trivial child workflow."""
    return i


@DBOS.workflow()
def fan_out(children: int) -> int:
    """Start ``children`` child workflows, then wait for all of them."""
    handles = [DBOS.start_workflow(child, i) for i in range(children)]
    return sum(handle.get_result() for handle in handles)


@DBOS.workflow()
def sleeper(due_at: float) -> None:
    """A durable sleep until ``due_at``; the replayed sleep reads its recorded end time."""
    DBOS.sleep(max(0.001, due_at - time.time()))
    with RESUMED_LOCK:
        RESUMED.append(time.time())
        if len(RESUMED) == EXPECTED["workflows"]:
            ALL_RESUMED.set()


def configure(db: Path | str, synchronous: str, poll: float | None) -> None:
    """Construct DBOS on ``db``: a ``postgresql://`` URL as given, or a SQLite file, preset
    to WAL with ``synchronous`` set on every connection.

    DBOS sets neither pragma on SQLite; a class-level SQLAlchemy ``connect`` listener runs
    beside DBOS's own (which sets IMMEDIATE transactions and a busy timeout). Every process
    has its own executor id on PostgreSQL, where several share one database.
    """
    if isinstance(db, str):
        config: DBOSConfig = {"name": "bench", "system_database_url": db,
                              "executor_id": f"bench-{os.getpid()}",
                              "application_version": "bench", "log_level": "WARNING"}
        if poll is not None:
            config["notification_listener_polling_interval_sec"] = poll
        DBOS(config=config)
        return
    if not db.exists():
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.close()

    @sa.event.listens_for(sa.Engine, "connect")
    def set_synchronous(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA synchronous={synchronous}")

    config = {
        "name": "bench",
        "system_database_url": f"sqlite:///{db}",
        # Recovery only picks up workflows of the same executor id and application version.
        "executor_id": "bench",
        "application_version": "bench",
        "log_level": "WARNING",
    }
    if poll is not None:
        config["notification_listener_polling_interval_sec"] = poll
    DBOS(config=config)


def sleep_rows(db: Path) -> int:
    """Durable sleeps recorded so far (recv records its timeout as one too)."""
    conn = sqlite3.connect(db)
    try:
        (count,) = conn.execute(
            "SELECT count(*) FROM operation_outputs WHERE function_name = 'DBOS.sleep'"
        ).fetchone()
        return int(count)
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        conn.close()


def wait_for(condition: Any, what: str, timeout: float = 300.0) -> None:
    """Poll ``condition()`` every 10 ms; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"DBOS worker: timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def result(payload: dict[str, Any]) -> None:
    """Print the result line."""
    print("RESULT " + json.dumps(payload), flush=True)


def park_until_killed() -> None:
    """Tell the harness the state is durable, then wait for its SIGKILL."""
    print("READY", flush=True)
    while True:
        time.sleep(3600)


def cmd_record(args: argparse.Namespace) -> None:
    DBOS.launch()
    record_workflow(10)  # warm-up: pool connections, first-call paths
    wall, cpu = [], []
    for _ in range(args.runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        record_workflow(args.size)
        wall.append((time.perf_counter() - start) / args.size * 1e6)
        cpu.append((time.process_time() - start_cpu) / args.size * 1e6)
    result({"wall_us": wall, "cpu_us": cpu})


def cmd_replay_prepare(args: argparse.Namespace) -> None:
    DBOS.launch()
    DBOS.start_workflow(replay_workflow, args.size)
    wait_for(lambda: sleep_rows(args.db) == 1, "the workflow to park in DBOS.recv")
    park_until_killed()


def cmd_replay_recover(args: argparse.Namespace) -> None:
    launch = time.time()
    DBOS.launch()
    if not REPLAYED.wait(timeout=300):
        raise TimeoutError("DBOS worker: recovered workflow did not replay within 300s")
    result({"launch": launch, "entered": MARKS["entered"], "replayed": MARKS["replayed"]})


def cmd_wake(args: argparse.Namespace) -> None:
    DBOS.launch()
    wake_parent(1, args.via, 0.0)  # warm-up
    result({"latencies_s": wake_parent(args.size, args.via, args.jitter)})


def cmd_children(args: argparse.Namespace) -> None:
    DBOS.launch()
    fan_out(5)  # warm-up
    totals = []
    for _ in range(args.runs):
        start = time.perf_counter()
        fan_out(args.size)
        totals.append(time.perf_counter() - start)
    result({"total_s": totals})


@DBOS.workflow()
def steps_workflow(steps: int) -> int:
    """``steps`` sequential trivial steps (the throughput shape)."""
    for i in range(steps):
        trivial_step(i)
    return steps


def cmd_throughput(args: argparse.Namespace) -> None:
    """``--workflows`` concurrent workflows of ``--size`` steps, from ``--start-at`` on."""
    DBOS.launch()
    steps_workflow(5)  # warm-up
    time.sleep(max(0.0, args.start_at - time.time()))
    start = time.time()
    handles = [DBOS.start_workflow(steps_workflow, args.size) for _ in range(args.workflows)]
    for handle in handles:
        handle.get_result()
    result({"start": start, "end": time.time(), "steps": args.size * args.workflows})


def cmd_restart_prepare(args: argparse.Namespace) -> None:
    DBOS.launch()
    due_at = time.time() + args.due_in
    for _ in range(args.size):
        DBOS.start_workflow(sleeper, due_at)
    wait_for(lambda: sleep_rows(args.db) == args.size, "all sleeps to be recorded")
    if time.time() >= due_at:
        raise RuntimeError(
            f"DBOS worker: starting {args.size} sleepers took longer than --due-in "
            f"{args.due_in}s, so some sleeps ended before the kill; raise --due-in"
        )
    print(f"DUE {due_at}", flush=True)
    park_until_killed()


def cmd_restart_recover(args: argparse.Namespace) -> None:
    EXPECTED["workflows"] = args.size
    launch = time.time()
    DBOS.launch()
    if not ALL_RESUMED.wait(timeout=600):
        raise TimeoutError(f"DBOS worker: only {len(RESUMED)}/{args.size} resumed in 600s")
    result({"launch": launch, "first": min(RESUMED), "resumed": max(RESUMED)})


COMMANDS = {
    "record": cmd_record,
    "replay-prepare": cmd_replay_prepare,
    "replay-recover": cmd_replay_recover,
    "wake": cmd_wake,
    "throughput": cmd_throughput,
    "children": cmd_children,
    "restart-prepare": cmd_restart_prepare,
    "restart-recover": cmd_restart_recover,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._dbos_worker")
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--db", required=True, help="a SQLite file or a postgresql:// URL")
    parser.add_argument("--sync", choices=("FULL", "NORMAL"), required=True)
    parser.add_argument("--poll", type=float, default=None, help="listener poll, seconds")
    parser.add_argument("--size", type=int, default=1, help="steps, trials or workflows")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--via", choices=("recv", "result"), default="recv")
    parser.add_argument("--jitter", type=float, default=0.0, help="wake: max pre-delay, s")
    parser.add_argument("--workflows", type=int, default=16, help="throughput: per process")
    parser.add_argument("--start-at", type=float, default=0.0, help="throughput: time.time()")
    parser.add_argument("--due-in", type=float, default=5.0, help="restart: sleep length")
    args = parser.parse_args()
    code = 0
    try:
        if not args.db.startswith(("postgresql://", "postgres://")):
            args.db = Path(args.db)
        configure(args.db, args.sync, args.poll)
        COMMANDS[args.command](args)
    except BaseException:  # report, then exit without joining parked workflow threads
        traceback.print_exc()
        code = 1
    # Workflows may still be parked and the database copy is thrown away: skip shutdown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
