"""Running a generated program uninterrupted and under killed workers, and reading back
what happened so the two runs can be compared.

``run_reference`` runs the program in this process (``Engine`` + an embedded worker).
``run_crashing`` runs it on a fresh database under real ``engine worker`` processes
that are SIGKILLed on a schedule (``KillPlan``), some of them armed with
``ENGINE_FAULT=point:N`` so they kill themselves at an exact point, and restarted until
every execution of the tree has ended. ``collect`` turns a database into an
``Outcome``: per execution (named by its path in the tree, since ids differ between
runs), its status, output, end message and event kinds, plus the invariants that must
hold in any single run. ``compare`` lists the differences between two outcomes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crash_grammar import ROOT
from crash_server import CountingServer

from engine.api import Engine
from engine.ids import child_id
from store.events import ChildCreated, CommandFailed, ExecutionEnded, StepCompleted
from store.model import ENDED_STATUSES
from stores import fresh_database

LEASE = "0.5"
FREEZE_SECONDS = 0.8
POLL = "0.002"
MAX_ATTEMPTS = "1000"  # kills are the harness's, not the flows': no execution may be given up on
FAULT_POINTS = ("step.ran", "child.created", "commit.before", "commit.after", "connection.sent")


def engine_command() -> list[str]:
    """The real ``engine`` console script of this venv (or the module, if not installed)."""
    script = Path(sys.executable).parent / "engine"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from cli.main import main; main()"]


# -- what a run left in its database ------------------------------------------------


@dataclass
class Execution:
    """One execution, named by its place in the tree."""

    path: str
    id: str
    type: str
    flow: str
    status: str
    message: str | None
    output: Any
    kinds: list[str]

    def comparable(self, ids: dict[str, str]) -> tuple[Any, ...]:
        kinds = self.kinds
        if self.type == "CONNECTION":  # attempts are at least once: a kill may repeat one
            kinds = [k for i, k in enumerate(kinds) if not (k == "attempt" and i and kinds[i - 1] == "attempt")]
        return (self.type, self.flow, self.status, normalise(self.message, ids), self.output, kinds)


@dataclass
class Outcome:
    """Everything one run of a program left behind, keyed by path."""

    executions: dict[str, Execution] = field(default_factory=dict)
    step_runs: dict[str, int] = field(default_factory=dict)  # step key -> real executions of its body
    requests: dict[str, int] = field(default_factory=dict)  # connection path -> requests received
    problems: list[str] = field(default_factory=list)  # invariants broken inside this run
    ids: dict[str, str] = field(default_factory=dict)  # execution id -> path
    elapsed: float = 0.0  # seconds the run took

    def summary(self) -> str:
        return "\n".join(
            f"  {e.path}: {e.status} {_cut(normalise(e.message, self.ids))!r} output={_cut(e.output)} kinds={e.kinds}"
            for e in self.executions.values()
        )


def _cut(value: Any, width: int = 100) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


_ID = re.compile(r"\b[0-9a-f]{16}\b")
_RUNS = re.compile(r"runs\[([^\]]+)\]=<([0-9.]*)>")
_REFUSED = re.compile(r"step (\S+) refused")


def normalise(message: str | None, ids: dict[str, str]) -> str | None:
    """A message with execution ids replaced by paths and step run counts removed."""
    if message is None:
        return None
    message = _ID.sub(lambda m: ids.get(m.group(0), "<unknown id>"), message)
    return _RUNS.sub(lambda m: f"runs[{m.group(1)}]", message)


def collect(engine: Engine, root_id: str, effects: Path, server: CountingServer, *, kills: int) -> Outcome:
    """Read the tree of ``root_id`` back and check what must hold in any run.

    ``kills`` is how many times a worker was SIGKILLed or frozen past its lease during
    the run: each step body and each connection may have run at most that many extra times.
    """
    store = engine.store
    out = Outcome()
    rows = {row.id: row for row in store.list_executions()}
    created: Counter[str] = Counter()
    queue = [(root_id, "root")]
    recorded_keys: set[str] = set()
    while queue:
        eid, path = queue.pop(0)
        out.ids[eid] = path
        row = rows.get(eid)
        if row is None:
            out.problems.append(f"{path}: execution {eid} was recorded as created but has no row")
            continue
        events = store.load_events(eid)
        seqs = [e.seq for e in events]
        if seqs != list(range(1, len(events) + 1)):
            out.problems.append(f"{path}: seqs are not gap-free from 1: {seqs}")
        if row.last_seq != len(events):
            out.problems.append(f"{path}: row.last_seq={row.last_seq} but the log has {len(events)} events")
        kinds = [e.kind for e in events]
        if not kinds or kinds[0] != "started":
            out.problems.append(f"{path}: log does not start with 'started': {kinds}")
        if row.status not in ENDED_STATUSES:
            out.problems.append(f"{path}: left {row.status} (every execution must end)")
        if kinds.count("ended") != 1 or kinds[-1] != "ended":
            out.problems.append(f"{path}: log must end with exactly one 'ended' event: {kinds}")
        else:
            end = events[-1].body
            assert isinstance(end, ExecutionEnded)
            if end.status != row.status or (row.type == "FLOW" and end.output_value != row.output_value):
                out.problems.append(
                    f"{path}: row says {row.status} {row.output_value!r}, the log's end says "
                    f"{end.status} {end.output_value!r}"
                )
        out.executions[path] = Execution(path, eid, row.type, row.flow, row.status, row.message, row.output_value, kinds)
        # steps: the result the handler saw (end message) must be the recorded one
        ran = []
        for e in events:
            if isinstance(e.body, StepCompleted):
                ran.append(e.body.result["n"])
                recorded_keys.add(e.body.result["k"])
            elif isinstance(e.body, CommandFailed) and e.body.failed_command == "step":
                refused = _REFUSED.match(e.body.error.message)
                recorded_keys.add(refused.group(1) if refused else f"<unparsed {e.body.error.message!r}>")
        for name, shown in _RUNS.findall(row.message or ""):
            if name == row.flow and shown != ".".join(map(str, ran)):
                out.problems.append(
                    f"{path}: the ending activation saw step runs <{shown}> but the log recorded "
                    f"<{'.'.join(map(str, ran))}>: a recorded step result was not used on replay"
                )
        index = 0
        for e in events:
            if isinstance(e.body, ChildCreated):
                child = e.body.child_id
                created[child] += 1
                if child != child_id(eid, e.seq):
                    out.problems.append(f"{path}: child {child} at seq {e.seq} does not derive from (parent, seq)")
                crow = rows.get(child)
                if crow is not None and crow.parent_id != eid:
                    out.problems.append(f"{path}: child {child} has parent {crow.parent_id}")
                queue.append((child, f"{path}/{e.body.flow}#{index}"))
                index += 1
    for child, n in created.items():
        if n != 1:
            out.problems.append(f"{out.ids.get(child, child)}: created {n} times ('child' events)")
    strays = set(rows) - set(out.ids)
    if strays:
        out.problems.append(f"executions outside the tree (orphans): {sorted(strays)}")
    # side effects of steps
    for f in sorted(effects.iterdir()) if effects.exists() else []:
        if f.stat().st_size:  # empty: killed between creating the file and writing to it
            out.step_runs[f.name] = f.stat().st_size
    for key, n in out.step_runs.items():
        if n - 1 > kills:
            out.problems.append(f"step {key} ran {n} times with only {kills} kill(s)")
    # every step body that ran has its outcome recorded, and nothing is recorded that never ran
    for key in recorded_keys - set(out.step_runs):
        out.problems.append(f"step {key} is recorded but its body never ran")
    for key in set(out.step_runs) - recorded_keys:
        out.problems.append(f"step {key} ran {out.step_runs[key]} time(s) but no outcome was recorded")
    # connections: every request belongs to a connection; at least once, at most once more per kill
    counts = server.counts_for(set(rows))
    for key, n in counts.items():
        parent, _, seq = key.partition(":")
        conn = child_id(parent, int(seq)) if seq.isdigit() else ""
        if conn not in out.ids or rows[conn].type != "CONNECTION":
            out.problems.append(f"request with Idempotency-Key {key} belongs to no connection execution")
            continue
        out.requests[out.ids[conn]] = n
        if n - 1 > kills:
            out.problems.append(f"{out.ids[conn]}: {n} requests with only {kills} kill(s)")
    for path, ex in out.executions.items():
        if ex.type == "CONNECTION":
            attempts = ex.kinds.count("attempt")
            if ex.status in ENDED_STATUSES and out.requests.get(path, 0) < 1:
                out.problems.append(f"{path}: connection ended but the server never saw its request")
            if attempts > out.requests.get(path, 0):
                out.problems.append(f"{path}: {attempts} attempts recorded, {out.requests.get(path, 0)} requests sent")
    return out


def compare(reference: Outcome, crashed: Outcome) -> list[str]:
    """How ``crashed`` differs from ``reference`` (empty when they agree)."""
    diffs = []
    for path in sorted(set(reference.executions) | set(crashed.executions)):
        ref, got = reference.executions.get(path), crashed.executions.get(path)
        if ref is None or got is None:
            diffs.append(f"{path}: only in the {'crashed' if ref is None else 'reference'} run")
            continue
        a, b = ref.comparable(reference.ids), got.comparable(crashed.ids)
        for label, x, y in zip(("type", "flow", "status", "message", "output", "event kinds"), a, b):
            if x != y:
                diffs.append(f"{path}: {label} differs:\n    reference: {x!r}\n    crashed:   {y!r}")
    if set(reference.step_runs) != set(crashed.step_runs):
        diffs.append(
            f"steps that ran differ: reference {sorted(reference.step_runs)}, crashed {sorted(crashed.step_runs)}"
        )
    return diffs


@dataclass
class Figures:
    """Totals over the examples of a pytest run (printed at its end)."""

    programs: int = 0
    failed_programs: int = 0
    flows_in_programs: int = 0
    executions: int = 0  # per crashed run, every execution in the tree
    connections: int = 0
    harness_kills: int = 0
    freezes: int = 0  # workers SIGSTOPped past their lease, then resumed
    leases_held_at_kill: int = 0  # executions leased by a worker when the harness killed it
    fault_kills: int = 0
    fault_kills_by_point: dict[str, int] = field(default_factory=dict)
    workers_started: int = 0
    step_bodies_run: int = 0
    step_reruns: int = 0  # extra runs of a step body after a kill (at-least-once)
    requests: int = 0
    repeated_requests: int = 0
    crashed_seconds: float = 0.0
    lost: int = 0  # programs whose crashed run differed from the reference or broke an invariant

    def add(self, **values: Any) -> None:
        for key, value in values.items():
            if isinstance(value, dict):
                mine = getattr(self, key)
                for k, n in value.items():
                    mine[k] = mine.get(k, 0) + n
            else:
                setattr(self, key, getattr(self, key) + value)



# -- running ------------------------------------------------------------------------


def start_root(db: str, flows: Path, effects: Path, server: CountingServer, seed: int) -> tuple[Engine, str]:
    engine = Engine(db)
    engine.sync_flows(flows)
    effects.mkdir(parents=True, exist_ok=True)
    root = engine.start(ROOT, {"effects": str(effects), "base": server.base, "seed": seed})
    return engine, root


def all_ended(engine: Engine) -> bool:
    return all(row.status in ENDED_STATUSES or row.status == "HALTED" for row in engine.store.list_executions())


def run_reference(workdir: Path, flows: Path, server: CountingServer, seed: int, timeout: float) -> Outcome:
    """The program run once, uninterrupted, by a worker in this process, on a fresh database."""
    workdir.mkdir(parents=True, exist_ok=True)
    with fresh_database(workdir, "reference") as db:
        return _run_reference(db, workdir, flows, server, seed, timeout)


def _run_reference(db: str, workdir: Path, flows: Path, server: CountingServer, seed: int, timeout: float) -> Outcome:
    engine, root = start_root(db, flows, workdir / "reference-effects", server, seed)
    try:
        worker = engine.worker(poll_interval=0.002)
        deadline = time.monotonic() + timeout
        timed_out = []

        def done() -> bool:
            if time.monotonic() > deadline:
                timed_out.append(True)
                return True
            return all_ended(engine)

        began = time.monotonic()
        worker.run(until=done)
        out = collect(engine, root, workdir / "reference-effects", server, kills=0)
        out.elapsed = time.monotonic() - began
        if timed_out:
            out.problems.insert(0, f"the uninterrupted run did not end within {timeout:.0f} s")
        return out
    finally:
        engine.close()


@dataclass
class KillPlan:
    """When to kill which worker, and which restarted workers carry an ENGINE_FAULT.

    ``workers`` processes run at once. ``kills`` are (seconds, worker slot modulo
    ``workers``, targeted, action): a blind one comes ``seconds`` after the previous
    one; a targeted one waits (up to 1 s) until that worker holds a lease, then
    ``seconds / 20`` more. ``action`` is ``kill`` (SIGKILL, then a new worker) or
    ``freeze`` (SIGSTOP for ``FREEZE_SECONDS``, longer than the lease, then SIGCONT).
    ``faults`` are ``point:N`` specs given, in order, to the worker processes as they
    are started.
    """

    kills: list[tuple[float, int, bool, str]]
    faults: list[str]
    workers: int = 2
    concurrency: int = 16


@dataclass
class CrashRun:
    outcome: Outcome | None
    kills: int = 0
    fault_kills: int = 0
    spawned: int = 0
    elapsed: float = 0.0
    leases_at_kill: int = 0  # executions the killed workers held leases on (harness kills only)
    freezes: int = 0
    fault_points: dict[str, int] = field(default_factory=dict)  # ENGINE_FAULT point -> kills there
    problems: list[str] = field(default_factory=list)
    logs: str = ""


class _Workers:
    """The worker processes of one crashing run, restarted as they die."""

    def __init__(self, db: str, logdir: Path, plan: KillPlan) -> None:
        self.db, self.logdir, self.plan = db, logdir, plan
        self.faults = list(plan.faults)
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * plan.workers
        self.kills = self.fault_kills = self.freezes = self.spawned = self.leases_at_kill = 0
        self.frozen: dict[int, float] = {}  # slot -> when to SIGCONT it
        self.armed: dict[int, str] = {}  # slot -> the ENGINE_FAULT its process carries
        self.fault_points: Counter[str] = Counter()  # point -> processes it killed
        self.problems: list[str] = []

    def spawn(self, slot: int) -> None:
        env = {k: v for k, v in os.environ.items() if k != "ENGINE_FAULT"}
        self.armed.pop(slot, None)
        if self.faults:
            env["ENGINE_FAULT"] = self.armed[slot] = self.faults.pop(0)
        self.spawned += 1
        cmd = [*engine_command(), "--db", self.db, "worker", "--lease", LEASE, "--poll", POLL,
               "--concurrency", str(self.plan.concurrency), "--max-attempts", MAX_ATTEMPTS]
        with open(self.logdir / f"worker-{self.spawned}-{env.get('ENGINE_FAULT', 'nofault')}.log", "wb") as log:
            self.procs[slot] = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)

    def reap(self) -> None:
        """Thaw workers whose freeze is over; restart those that died on their own (an
        ENGINE_FAULT, or a crash)."""
        now = time.monotonic()
        for slot, until in list(self.frozen.items()):
            proc = self.procs[slot]
            if now >= until and proc is not None:
                del self.frozen[slot]
                if proc.poll() is None:
                    proc.send_signal(signal.SIGCONT)
        for slot, proc in enumerate(self.procs):
            if proc is not None and proc.poll() is not None:
                if proc.returncode == -signal.SIGKILL:
                    self.fault_kills += 1
                    self.fault_points[self.armed.get(slot, "?").partition(":")[0]] += 1
                else:
                    self.problems.append(f"a worker exited with code {proc.returncode} (see its log)")
                self.spawn(slot)

    def holds_lease(self, slot: int, engine: Engine) -> bool:
        proc = self.procs[slot]
        if proc is None or proc.poll() is not None:
            return False
        marker = f":{proc.pid}:"
        return any(marker in (row.lease_owner or "") for row in engine.store.list_executions(status="RUNNING"))

    def kill(self, slot: int, engine: Engine) -> None:
        proc = self.procs[slot]
        if proc is not None and proc.poll() is None:
            marker = f":{proc.pid}:"
            self.leases_at_kill += sum(
                marker in (row.lease_owner or "") for row in engine.store.list_executions(status="RUNNING")
            )
            proc.kill()
            proc.wait()
            self.frozen.pop(slot, None)
            self.kills += 1
            self.spawn(slot)

    def freeze(self, slot: int, seconds: float) -> None:
        """SIGSTOP the worker for ``seconds`` (past its lease): a zombie that wakes up
        to find its executions claimed by another worker, and must not commit."""
        proc = self.procs[slot]
        if proc is not None and proc.poll() is None and slot not in self.frozen:
            proc.send_signal(signal.SIGSTOP)
            self.frozen[slot] = time.monotonic() + seconds
            self.freezes += 1

    def stop(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def run_crashing(
    workdir: Path, flows: Path, server: CountingServer, seed: int, plan: KillPlan, timeout: float
) -> CrashRun:
    """The program run on a fresh database by worker processes killed along ``plan``."""
    logdir = workdir / "worker-logs"
    logdir.mkdir(parents=True, exist_ok=True)
    with fresh_database(workdir, "crashed") as db:
        return _run_crashing(db, logdir, workdir, flows, server, seed, plan, timeout)


def _run_crashing(
    db: str, logdir: Path, workdir: Path, flows: Path, server: CountingServer, seed: int, plan: KillPlan, timeout: float
) -> CrashRun:
    engine, root = start_root(db, flows, workdir / "crashed-effects", server, seed)
    workers = _Workers(db, logdir, plan)
    began = time.monotonic()
    deadline = began + timeout
    finished = False
    try:
        for slot in range(plan.workers):
            workers.spawn(slot)

        def wait(seconds: float) -> bool:
            until = time.monotonic() + seconds
            while True:
                workers.reap()
                if all_ended(engine):
                    return True
                now = time.monotonic()
                if now >= until or now >= deadline:
                    return False
                time.sleep(min(0.005, until - now))

        def busy(slot: int, seconds: float) -> bool:
            """Wait (at most ``seconds``) until the worker in ``slot`` holds a lease."""
            until = time.monotonic() + seconds
            while time.monotonic() < min(until, deadline):
                workers.reap()
                if all_ended(engine):
                    return True
                if workers.holds_lease(slot, engine):
                    return False
                time.sleep(0.001)
            return False

        for delay, slot, targeted, action in plan.kills:
            slot %= plan.workers
            if targeted:
                finished = busy(slot, 1.0) or wait(delay / 20)
            else:
                finished = wait(delay)
            if finished:
                break
            if action == "freeze":
                workers.freeze(slot, FREEZE_SECONDS)
            else:
                workers.kill(slot, engine)
        if not finished:
            finished = wait(max(0.0, deadline - time.monotonic()))
    finally:
        workers.stop()
    run = CrashRun(
        None, kills=workers.kills, fault_kills=workers.fault_kills, spawned=workers.spawned,
        elapsed=time.monotonic() - began, leases_at_kill=workers.leases_at_kill, freezes=workers.freezes,
        fault_points=dict(workers.fault_points),
    )
    run.problems.extend(workers.problems)
    run.logs = _log_tails(logdir)
    if "Traceback" in run.logs:
        run.problems.append("a worker logged a traceback (see the worker logs below)")
    try:
        if not finished:
            statuses = {r.id: r.status for r in engine.store.list_executions()}
            run.problems.append(f"the crashed run did not end within {timeout:.0f} s: {statuses}")
        run.outcome = collect(
            engine, root, workdir / "crashed-effects", server,
            kills=workers.kills + workers.fault_kills + workers.freezes,
        )
    finally:
        engine.close()
    return run


def _log_tails(logdir: Path, lines: int = 15) -> str:
    out = []
    for path in sorted(logdir.glob("*.log"), key=lambda p: int(p.name.split("-")[1])):
        text = path.read_text(errors="replace").strip()
        if text:
            out.append(f"--- {path.name}\n" + "\n".join(text.splitlines()[-lines:]))
    return "\n".join(out)
