"""The engine's performance targets, read from rows of the same run (FULL: the default).

Each target names the row it reads; ``if_missed`` is what RESULTS.md prints under the
Targets table when a run misses it: the profile evidence and what would close the gap.
The evidence was taken on this 2-core machine with `py-spy`, cProfile with a per-thread
CPU clock (``cProfile.Profile(time.thread_time)`` around ``Worker._activate``), SQLite's
trace callback on the store's writer, and monkeypatched timestamps; every shape can be
profiled the same way through ``python -m benchmarks.engine_proc COMMAND ...``.
"""

from __future__ import annotations

from benchmarks.cost import BASELINE
from benchmarks.engine_recovery import RESTART_K
from benchmarks.engine_short import METRIC as SHORT_METRIC
from benchmarks.engine_short import RATIO_SUBJECT
from benchmarks.engine_wake import RAW_COMMIT
from benchmarks.harness import COST, target
from benchmarks.raw_sqlite import SUBJECT as RAW

FULL = "FULL"
NORMAL = "NORMAL"

RECORD = """\
A step commit runs 7 statements (`BEGIN IMMEDIATE`, `SAVEPOINT unit`, `SELECT fence, status,
pause_requested`, `UPDATE executions SET last_seq`, `INSERT INTO events`, `RELEASE`, `COMMIT`)
where the raw limit runs 3, and it writes ~2.2 WAL frames (the events leaf and the executions
row) where the raw commit writes ~1.7. Per step at NORMAL: ~32 µs CPU, of which SQL ~22 µs
(the same statements replayed without the engine: 21.9 µs vs 14.4 µs for the raw commit) and
Python ~10 µs; at FULL the fsync adds ~60–70 µs of kernel CPU and its latency. The ratio then
mostly follows the disk: compare the run's min–max. Would close it: (1) fold the fence check
into the append, `UPDATE executions SET last_seq=? WHERE id=? AND last_seq=? AND fence=? AND
status='RUNNING' RETURNING pause_requested` (store/writes.py `apply_commit` + `_append`: one
statement fewer); (2) in `SqliteStore._apply_batch` (store/sqlite.py) skip `SAVEPOINT`/`RELEASE`
when the batch holds one unit (roll back the transaction instead): −1.5 µs CPU per step;
(3) stop updating `executions.last_seq` per step (derive it from `max(seq)` of the events
primary key, which already refuses a duplicate seq) so a step writes one page, like the raw
commit."""

DISPATCH = """\
Worker start → handler entered, timed with monkeypatched timestamps in a recover process
(K=1,000): the first tick opens the main thread's reader connection (`SqliteStore._reader`:
connect + 3 PRAGMAs, ~0.9 ms), then the claim transaction (~1–4 ms: at FULL it is a durable
write, so it waits for an fsync), then the first pool thread starts and opens its own reader
(~0.3 ms), reads the row and the log (`load_events`, 2.6 ms for 1,000 events; ~0.1 ms at
K=10) and compiles the flow (~0.4 ms). Would close it: (1) write lease-only transactions
(`claim`, `renew_leases`, `release_leases` in store/sqlite.py) without an fsync — e.g.
`PRAGMA synchronous=NORMAL` on the writer around a batch that holds only lease changes: a
lost lease after a power cut only makes the execution claimable again, and the next FULL
commit syncs the WAL frames before it; (2) open the main thread's reader in
`Worker.__init__` (engine/worker.py)."""

RESTART = """\
Spawn → past the wait at K=1,000 is interpreter start (~15–20 ms, of which ~9 ms is the
editable install's import finder run by `site`) + imports (`import engine.api` ~95 ms quiet,
up to ~200 ms under load: `python -X importtime -c 'import engine.api'`) + Engine() (~2 ms) +
dispatch and replay (~8 ms). Of the imports, `engine.connectors` is ~50–65 ms:
`engine/connectors/registry.py` imports every built-in connector at import time (`rest` →
http.client + ssl, `smtp` → smtplib + email, `command`/`git` → subprocess, `postgres`,
`sqlite`) and `importlib.metadata` (→ email.*) for plugins; it is reached from `engine.api`,
`engine.worker` → `engine.connection_runner`, and `engine.commands.messages`. A worker whose flows make
no connection needs none of it. Would close it: make `_BUILTINS` map names to
`"module:Class"` strings imported in `get_connector`, and import `importlib.metadata` inside
`_plugins()`. Measured with a stand-in registry of that shape: `import engine.api` 95 → 65 ms
(median of 5), so the row drops by ~30 ms; what is left is msgspec (~13 ms), the store
(~14 ms) and the engine's own modules. `engine worker` adds click and the CLI (~30 ms more)."""

WAKE_MESSAGE = """\
The notice itself is not where the time goes. A datagram from the answering process reaches a
waiting worker in ~0.1 ms (p50, /tmp measurement beside the unix-socket choice in
`store/notices.py`); at NORMAL the message wake (1.03 ms p50 on 2026-11-29) is no slower than
the wake of a parent inside one process (1.10 ms), which has no notice at all. At FULL the span
holds the answer's own synced commit (one raw FULL commit, 0.56 ms that run) plus the same
~0.9-1.0 ms as at NORMAL: the worker's listening thread hands over to its loop, the loop
claims (a batch of claims alone no longer waits for fsync: `store.leases.Claiming`, which took
the FULL p50 from 2.2-2.4 ms to 1.4-1.5 ms), the activation thread is handed the lease, and
`get_execution`, `load_events`, replay and the handler run. Reaching 2× one FULL commit needs
that activation path under one FULL commit (~0.5 ms), the same work the one-process wake
target needs (issue 15: warm cache of parked handlers, no thread hand-off when idle)."""

WAKE_ONE = """\
The path from the child's last line to the parent's next line, timed with monkeypatched
timestamps in one process (30 trials): the child's end commit, `Worker._commit` →
`store.commit` returned, ~0.25 ms at NORMAL and ~0.8 ms at FULL under load. Its 19
statements (end event and status, `_wake_waiters` on `waits`/`wait_targets`, the parent made
QUEUED and claimed in the same transaction) take ~63 µs from `BEGIN` to `COMMIT` issued
(SQLite trace callback); the rest is the COMMIT itself (at FULL one fsync, ~0.16–0.22 ms on
this disk when quiet) and the group-commit hand-off. Then `_start(parent)` → `_activate` on a
pool thread ~55 µs, `get_execution` + `load_events` ~90–150 µs, flow load and replay to the
next line ~0.1 ms. At NORMAL the p50 is ~0.5–0.6 ms, so at FULL the fsync pushes it past
0.5 ms. Tried and rejected: running the claimed parent inline on the committing thread
instead of the pool (no measurable change at NORMAL, 3 × 40 trials). Would close it: fewer
statements in the end commit — in `_set_status` (store/writes.py) skip the two `DELETE FROM
waits/wait_targets WHERE waiter_id = ?` for an execution that registered no wait, and write
the `dependencies` edge once (both `_append` and `_register_wait` insert it); and a cheaper
re-activation: a parked parent's row and decoded log kept in memory would remove ~0.1–0.15
ms, allowed only with a switch that every test suite can turn off (STYLE 15)."""

CPU_STEP = """TODO"""

THROUGHPUT_NORMAL = """TODO"""

SHORT = """TODO"""

INSTRUCTIONS = """TODO"""

CHILDREN = """\
Since commit d5c8c34 a child's `ChildCreated` event and row wait for the parent's next
commit (flushed before a step, a wait, a sleep, a read, `.run()`, at the end, or every 256
children), and the tree size and flow versions are read once per activation: ~1.1 commit
units and ~0.2–0.25 write transactions per child, 55–75 ms for 200 children at FULL on a
quiet machine. Before it, each `this.flow(..., wait=False)` was its own durable commit (200
fsyncs, 160–260 ms), measured by timestamps of the parent's events and reproduced by
monkeypatching `ReplayContext._commit`/`wait_for` (FULL 205–259 → 75–77 ms). What is left
is CPU: a trivial child's activation costs ~130 µs (1,000 queued children on one worker:
`get_execution`, `load_events`, flow load, handler, the end commit with `_wake_waiters`), and
16 activation threads contend for the GIL. A miss now means the machine was loaded (compare
the run's min–max and the load average in the header), or a regression in
`ChildCommands.create_child` / `Journal.write` (engine/commands/children.py, engine/journal.py): check *transactions per
child*."""

THROUGHPUT = """\
CPU-bound on one core: ~55–65 µs CPU per durable step at FULL with 16 executions, ~33–42 µs
at NORMAL whatever the concurrency (1, 4 or 16 executions give 19–25k steps/s at NORMAL).
Timing the group commit's batches at FULL (monkeypatched `_apply_batch`, 16 × 1,000 steps):
~1,300 transactions of 8.4 steps each, ~230 µs from entering the batch to issuing `COMMIT`,
~210 µs in `COMMIT` (the fsync), ~80 µs between transactions; the writer is busy 86% of the
time. The pre-COMMIT part grows ~28 µs per step in the batch (32 executions: 15.9 steps,
440 µs; 64: 30 steps, 890 µs → 16.5k steps/s), far more than the ~5 µs of SQL per step
measured alone: the leader shares the GIL with the handler threads, and sqlite3 releases it
around every statement. Tried by monkeypatching, each without a change beyond the run-to-run
noise (~±10%): a bare lock instead of `threading.Event` for group-commit tickets; no
savepoints and the fence check folded into the `last_seq` UPDATE (2 statements per step
instead of 5); batch-level statements (one fence SELECT, one `executemany` UPDATE, one
`executemany` INSERT per batch); `sys.setswitchinterval(0.0002)`; two `engine worker`
processes (worse: 12.5k vs 15.5k steps/s, the second process waits on SQLite's lock). The
single-commit rate is ~4.5–6k/s, so 5× needs ≤ ~35–40 µs CPU per durable step at FULL,
fsync included. What would close it is less Python per step, not less SQL: the engine-side
Python between the handler's `this.step` and the store (`Execution.step` →
`ReplayContext.step`/`_commit` → `StoreLive.commit` → `Commit` → `GroupCommit.submit`, the
`_claim_request`/`_committed` locks, `values.roundtrip` + `revive` of the result,
`caller_line`'s frame walk) is ~10 µs per step single-threaded, and each step costs two
thread hand-offs under load (submit → leader → waiter); activations on one thread
(an event loop instead of a thread per activation) would remove the hand-offs."""

# Issue 15's targets first, then the older ones that still hold.
target("CPU per durable step ≤ 40 µs at NORMAL (16 executions)", "throughput", "engine",
       NORMAL, "CPU per step", 40, if_missed=CPU_STEP)
target("throughput: durable steps/s at NORMAL ≥ 1× the single-commit rate", "throughput",
       "engine", NORMAL, "durable steps/s", 1, at_least=True, on_ratio=True,
       if_missed=THROUGHPUT_NORMAL)
target("throughput: durable steps/s at FULL ≥ 5× the single-commit rate", "throughput",
       "engine", FULL, "durable steps/s", 5, at_least=True, on_ratio=True, if_missed=THROUGHPUT)
target(f"one-step executions/s, one worker ≥ 4× {BASELINE}'s (same run)", "throughput",
       RATIO_SUBJECT, FULL, SHORT_METRIC, 4, at_least=True, if_missed=SHORT)
target("wake, one process: p50 ≤ 1.5× one raw FULL commit (between the message trials)", "wake",
       "engine, one process", FULL, "p50: child's last line → parent", 1.5, on_ratio=True,
       per=("wake", RAW, FULL, RAW_COMMIT), if_missed=WAKE_ONE)
target("wake, message from another process: p50 ≤ 2× one raw FULL commit (between its trials)", "wake",
       "engine, message from another process", FULL, "p50: answerer's last line → parent", 2,
       on_ratio=True, if_missed=WAKE_MESSAGE)
target("idle: worker CPU < 1 ms/s (0.1% of a core), N=10,000", "idle", "engine", FULL,
       "N=10,000: worker CPU while idle", 1)
target(f"restart, K=1,000: spawn → past its wait ≤ 1.5× (bare start + replay slope × 1,000)",
       "replay", "engine", FULL, f"restart ÷ (bare start + slope × {RESTART_K:,})", 1.5,
       if_missed=RESTART)
target(f"instructions per durable step ≥ 3× fewer than {BASELINE}", COST, "engine", "n/a",
       f"instructions per durable step, {BASELINE} ÷ this", 3, at_least=True, if_missed=INSTRUCTIONS,
       absent=f"see `python -m benchmarks cost --against {BASELINE}`")
target("record: per step ≤ 1.3× one raw WAL commit", "record", "engine", FULL, "per step",
       1.3, on_ratio=True, if_missed=RECORD)
target("record: this.log ≤ 10 µs per call", "record", "engine", FULL, "this.log per call", 10)
target("replay: slope ≤ 5 µs per recorded event", "replay", "engine", FULL,
       "slope per recorded step", 5)
target("replay: dispatch, worker start → handler entered ≤ 5 ms", "replay", "engine", FULL,
       "dispatch: start → entered, K=10", 5, if_missed=DISPATCH)
target("restart: process spawn → past its wait, K=1,000 ≤ 150 ms", "replay", "engine", FULL,
       f"restart: spawn → past its wait, K={RESTART_K}", 150)
target("wake, two processes: p50 ≤ 10 ms (child on the other worker)", "wake",
       "engine, child on another process", FULL, "p50: child's last line → parent", 10)
target("children: parent + 200 children ≤ 0.1 s", "children", "engine", FULL,
       "200 children, total", 100, if_missed=CHILDREN)
target("idle: RSS independent of the number waiting (≤ ×1.1)", "idle", "engine", FULL,
       "RSS ratio, larger N / smaller N", 1.1)
