"""Three hosts share one PostgreSQL database; one of them is lost mid-run.

The hosts are Linux network namespaces, each joined to a throwaway PostgreSQL server (in a
namespace of its own) by a veth pair (tests/netns_hosts.py). Two ``engine worker``
processes run in each host. The test starts ``JOBS`` executions of a flow that runs
recorded steps (each inserts rows into a ledger database: one per run of the step, one per
(execution, step) that a retry cannot duplicate), sleeps on a durable timer and waits for
a child. Once a third of them ended and the chosen host has activations in flight, that
host fails: its link goes down, then every process in it gets SIGKILL (scheduled by
progress, never by the clock). Then:

- every execution (jobs and their children) ended exactly once, ENDED_SUCCESS, with the
  right output, and its ledger rows show each step's effect once;
- a step ran more than once only where one of its runs was on the lost host;
- the lost host's executions in flight were taken over by the other hosts;
- no execution ran on two hosts at once (activation records the flows write with their
  host, pid and ``time.monotonic()``, one clock for all namespaces of this machine; an
  activation of the lost host is over when the host is gone).

It runs in the PostgreSQL pass (``ENGINE_TEST_STORE=postgres``) as root with ``ip`` and
PostgreSQL's server binaries installed, and skips saying which one is missing elsewhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from netns_hosts import Host, Hosts, hosts, why_no_hosts
from stores import chosen_store
from waiting import wait_until

pytestmark = pytest.mark.many_hosts

JOBS = 36
STEPS = 3
WORKERS_PER_HOST = 2
#: A worker renews every third of its lease, so it keeps its leases while blocked for up to
#: two thirds of it (6.7 s): longer than it may sit behind the row locks of the lost host's
#: open transactions (until the server notices the host: about 5 s, store.pg_url.SESSION_OPTIONS).
#: Only the lost host's work is then taken over.
LEASE = "10"
ENGINE_ARGV = [sys.executable, "-c", "from cli.main import main; main()"]

_MARK = '''
import os
import time


def mark(kind, this, inputs, how="-"):
    """Append 'kind id host pid monotonic how' to this worker's activation file, in one write."""
    line = f"{kind} {this.id} {os.environ['MH_HOST']} {os.getpid()} {time.monotonic():.6f} {how}\\n".encode()
    fd = os.open(os.path.join(inputs["log"], f"act-{os.getpid()}.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def record(execution_id, step, value):
    """The step's effect on the outside world: a row per run, and a row per (execution, step)."""
    import psycopg

    time.sleep(0.05)  # long enough that a host failure finds steps in flight
    from store.pg_url import SESSION_OPTIONS  # a lost host's ledger transaction ends as its engine ones do

    with psycopg.connect(os.environ["MH_LEDGER"], connect_timeout=10, options=SESSION_OPTIONS) as conn:
        conn.execute("INSERT INTO runs VALUES (%s, %s, %s, %s)", (execution_id, step, os.environ["MH_HOST"], os.getpid()))
        conn.execute("INSERT INTO effects VALUES (%s, %s, %s) ON CONFLICT DO NOTHING", (execution_id, step, value))
    return value


def activation(body, this, inputs):
    mark("start", this, inputs)
    how = "returned"
    try:
        return body()
    except BaseException as exc:  # re-raised: only noted, to tell how the activation ended
        how = type(exc).__name__
        raise
    finally:
        mark("end", this, inputs, how)
'''

JOB = _MARK + '''

def handler(system, this, inputs):
    def body():
        total = 0
        for i in range(inputs["steps"]):
            total += this.step(record, this.id, i, inputs["n"] * 10 + i)
        this.sleep(0.2)  # a durable timer, due by the database's clock
        child = this.flow("mh_leaf", n=inputs["n"], log=inputs["log"])
        this.set_output(total=total + child.get("output_value")["doubled"])
        return this.success("job done")
    return activation(body, this, inputs)
'''

LEAF = _MARK + '''

def handler(system, this, inputs):
    def body():
        this.set_output(doubled=this.step(record, this.id, 0, 2 * inputs["n"]))
    return activation(body, this, inputs)
'''

#: Run inside a host: register the flows and start the jobs; prints their ids.
CREATE = '''
import json, sys
from engine.api import Engine
engine = Engine(sys.argv[1])
engine.register_flow("mh_job", open(sys.argv[2]).read())
engine.register_flow("mh_leaf", open(sys.argv[3]).read())
print(json.dumps([engine.start("mh_job", {"n": n, "steps": int(sys.argv[4]), "log": sys.argv[5]})
                  for n in range(int(sys.argv[6]))]))
engine.close()
'''

#: Run inside a host: every execution with its status, output, input and ``ended`` events.
PROBE = '''
import json, sys
from engine.api import Engine
engine = Engine(sys.argv[1])
rows = engine.store.list_executions(limit=None)
print(json.dumps([{"id": r.id, "flow": r.flow, "status": r.status, "input": r.input_value, "output": r.output_value,
                   "ends": sum(e.kind == "ended" for e in engine.history(r.id))} for r in rows]))
engine.close()
'''


class Span(NamedTuple):
    start: float
    end: float
    host: str
    pid: int
    how: str  # how the handler ended: returned, Suspended, ExecutionEnd, ActivationAborted, lost...


@pytest.fixture
def three_hosts() -> Iterator[Hosts]:
    if chosen_store() != "postgres":
        pytest.skip("runs in the PostgreSQL pass (ENGINE_TEST_STORE=postgres): its hosts share one PostgreSQL database")
    pytest.importorskip("psycopg", reason="psycopg is not installed")
    reason = why_no_hosts()
    if reason is not None:
        pytest.skip(reason)
    with hosts(3) as built:
        yield built


def sql(built: Hosts, database: str, statement: str) -> list[tuple[Any, ...]]:
    """One statement from the test itself, through the server's Unix socket."""
    import psycopg

    with psycopg.connect(built.local(database), autocommit=True) as conn:
        cur = conn.execute(statement)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def in_host(built: Hosts, host: Host, script: str, *args: str) -> Any:
    """Run a Python ``script`` inside ``host`` with the engine database's URL first; its JSON output."""
    done = subprocess.run(host.argv(sys.executable, "-c", script, built.url(host, "engine"), *args),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def read_activations(log_dir: Path) -> list[tuple[str, str, str, int, float, str]]:
    """(kind, execution id, host, pid, monotonic time, how it ended) of every complete line."""
    records = []
    for path in log_dir.glob("act-*.log"):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 6 and parts[0] in ("start", "end"):
                records.append((parts[0], parts[1], parts[2], int(parts[3]), float(parts[4]), parts[5]))
    return records


def spans(records: list[tuple[str, str, str, int, float, str]], lost: str, lost_at: float, closed_at: float,
          ) -> dict[str, list[Span]]:
    """Activation intervals per execution. One still open on the lost host is over when the
    host was lost; one still open elsewhere is open until ``closed_at``."""
    open_: dict[tuple[str, int], list[tuple[float, str]]] = defaultdict(list)
    found: dict[str, list[Span]] = defaultdict(list)
    for kind, eid, host, pid, t, how in sorted(records, key=lambda r: r[4]):
        if kind == "start":
            open_[(eid, pid)].append((t, host))
        elif open_[(eid, pid)]:
            start, _ = open_[(eid, pid)].pop(0)
            found[eid].append(Span(start, t, host, pid, how))
    for (eid, pid), starts in open_.items():
        for t, host in starts:
            found[eid].append(Span(t, lost_at if host == lost else closed_at, host, pid, "lost" if host == lost else "open"))
    return found


def in_flight(log_dir: Path, host: str) -> set[str]:
    """Executions with an activation started and not ended on ``host``, by the records so far."""
    open_: dict[tuple[str, int], int] = defaultdict(int)
    for kind, eid, where, pid, _, _ in read_activations(log_dir):
        if where == host:
            open_[(eid, pid)] += 1 if kind == "start" else -1
    return {eid for (eid, _), n in open_.items() if n > 0}


def finished_jobs(log_dir: Path, jobs: set[str]) -> int:
    """Jobs whose handler has run to its end in some activation (by the records)."""
    return len({eid for kind, eid, _, _, _, how in read_activations(log_dir)
                if kind == "end" and eid in jobs and how in ("returned", "ExecutionEnd")})


def test_a_host_lost_mid_run_costs_no_execution_and_runs_none_twice(three_hosts: Hosts, tmp_path: Path) -> None:
    built = three_hosts
    log_dir = tmp_path / "activations"
    log_dir.mkdir(mode=0o777)
    sql(built, "postgres", "CREATE DATABASE engine")
    sql(built, "postgres", "CREATE DATABASE ledger")
    sql(built, "ledger", "CREATE TABLE runs (execution_id text, step int, host text, pid int)")
    sql(built, "ledger", "CREATE TABLE effects (execution_id text, step int, value int, PRIMARY KEY (execution_id, step))")
    (tmp_path / "mh_job.py").write_text(JOB)
    (tmp_path / "mh_leaf.py").write_text(LEAF)
    first, lost, third = built.items
    created = in_host(built, first, CREATE, str(tmp_path / "mh_job.py"), str(tmp_path / "mh_leaf.py"), str(STEPS),
                      str(log_dir), str(JOBS))
    jobs = set(created)

    workers: dict[str, list[subprocess.Popen[bytes]]] = defaultdict(list)
    for host in built.items:
        # Without parked handlers, "started and not ended by the records" means an activation that holds a
        # lease; a handler parked by the warm cache looks the same but its execution may go on elsewhere.
        env = {"MH_HOST": host.name, "MH_LEDGER": built.url(host, "ledger"), "ENGINE_SUPERVISE": "0",
               "ENGINE_WARM_CACHE": "0"}
        for n in range(WORKERS_PER_HOST):
            with open(tmp_path / f"{host.name}-worker{n}.log", "wb") as out:
                workers[host.name].append(subprocess.Popen(
                    host.argv(*ENGINE_ARGV, "--db", built.url(host, "engine"), "worker", "--lease", LEASE,
                              "--concurrency", "4", "--max-attempts", "20", env=env),
                    stdout=out, stderr=subprocess.STDOUT))
    try:
        # -- the failure, scheduled by progress -----------------------------------------------
        wait_until(lambda: finished_jobs(log_dir, jobs) >= JOBS // 3 and in_flight(log_dir, lost.name),
                   f"a third of the jobs ending while {lost.name} has activations in flight")
        killed = built.fail(lost)
        lost_at = time.monotonic()
        # read after the failure: an activation that ended between the wait and the link going down is no orphan
        orphans = in_flight(log_dir, lost.name)
        assert {p.pid for p in workers[lost.name]} <= set(killed)
        for proc in workers[lost.name]:
            proc.wait(timeout=60)

        # -- the other hosts finish everything -------------------------------------------------
        def all_ended() -> bool:
            for host in (first, third):
                for proc in workers[host.name]:
                    assert proc.poll() is None, f"a worker of {host.name} exited ({proc.returncode}); see its log"
            if finished_jobs(log_dir, jobs) < JOBS:
                return False
            rows = in_host(built, first, PROBE)
            return len(rows) == 2 * JOBS and all(r["status"].startswith("ENDED_") for r in rows)

        wait_until(all_ended, "every job and child ending on the hosts left")
        rows = in_host(built, third, PROBE)
    finally:
        for procs in workers.values():
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                proc.wait(timeout=60)
    closed_at = time.monotonic()

    # -- every execution ended exactly once, with the right output ----------------------------
    assert {r["status"] for r in rows} == {"ENDED_SUCCESS"}, [(r["id"], r["status"]) for r in rows if r["status"] != "ENDED_SUCCESS"]
    assert [r["id"] for r in rows if r["ends"] != 1] == []
    for r in rows:
        n = r["input"]["n"]
        expected = {"total": sum(n * 10 + i for i in range(STEPS)) + 2 * n} if r["flow"] == "mh_job" else {"doubled": 2 * n}
        assert r["output"] == expected, r
    assert {r["id"] for r in rows if r["flow"] == "mh_job"} == jobs

    # -- each step's effect once; a step re-ran only where a run of it was on the lost host ---
    effects = sql(built, "ledger", "SELECT execution_id, count(*) FROM effects GROUP BY execution_id")
    steps_of = {r["id"]: STEPS if r["flow"] == "mh_job" else 1 for r in rows}
    assert dict(effects) == steps_of
    runs: dict[tuple[str, int], list[str]] = defaultdict(list)
    for eid, step, host, _ in sql(built, "ledger", "SELECT execution_id, step, host, pid FROM runs"):
        runs[(eid, step)].append(host)
    again = {key: hosts_ for key, hosts_ in runs.items() if len(hosts_) > 1}
    assert [key for key, hosts_ in again.items() if lost.name not in hosts_] == [], "a step re-ran with no host lost"

    # -- the lost host's work was taken over; nothing ran on two hosts at once ----------------
    found = spans(read_activations(log_dir), lost.name, lost_at, closed_at)
    assert orphans, f"{lost.name} had nothing in flight when it was lost"
    takeovers = []
    for eid in orphans:
        after = [s.start for s in found[eid] if s.start >= lost_at and s.host != lost.name]
        assert after, f"{eid} of {lost.name} never ran again"
        takeovers.append(min(after) - lost_at)
    two_at_once = []
    for eid, items in found.items():
        items = sorted(items)
        for i, a in enumerate(items):
            for b in items[i + 1:]:
                if b.start >= a.end:
                    break
                # tolerated: the earlier activation was fenced out (nothing of it was recorded)
                if a.host != b.host and a.how not in ("ActivationAborted", "ActivationStopped"):
                    two_at_once.append(f"{eid}: {a} and {b}")
    assert two_at_once == [], two_at_once[:10]
    assert {s.host for items in found.values() for s in items} == {first.name, lost.name, third.name}
    for host in (first, third):
        for n in range(WORKERS_PER_HOST):
            text = (tmp_path / f"{host.name}-worker{n}.log").read_text(errors="replace")
            assert "Traceback" not in text and "internal error" not in text, text[-3000:]
    print("many hosts:", {"executions": len(rows), "lost_host_in_flight": len(orphans), "killed": len(killed),
                          "steps_rerun": len(again), "slowest_takeover_s": round(max(takeovers), 2),
                          "activations": sum(len(v) for v in found.values())})
