"""The engine's performance targets, read from rows of the same run (FULL: the default).

Each target names the row it reads; ``if_missed`` is what RESULTS.md prints under the
Targets table when a run misses it: the profile evidence and what would close the gap.
The evidence was taken on this 2-core machine with `py-spy`, cProfile with a per-thread
CPU clock (``cProfile.Profile(time.thread_time)`` around ``Worker._activate``), SQLite's
trace callback on the store's writer, and monkeypatched timestamps; every shape can be
profiled the same way through ``python -m benchmarks.engine_proc COMMAND ...``.
"""

from __future__ import annotations

from benchmarks.harness import target

FULL = "FULL"

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
Timeline of one wake (2026-11-30, perf_counter_ns probes in both processes merged on
CLOCK_MONOTONIC, 30 trials, NORMAL so that the disk does not drown it, load ~5): the
answer's commit returns and sends its datagram; the worker's listening thread returns from
`select` 140–280 µs later (the kernel waking a thread of another process on a busy
machine), reads `data_version` and hands over to the loop (~80–100 µs); the loop claims in
a write transaction of its own (flock, BEGIN, UPDATE, COMMIT at NORMAL: ~165 µs), wakes the
parked handler (~90–130 µs until its thread holds the GIL), which reads its row
(`resume`: `get_execution`) and the answer (`get_message`), ~150 µs. Changed since: the
listener asks `data_version` of the writing connection between writes, so this worker's
own commits no longer send its loop to claim again (an empty write transaction) while the
woken handler goes on, and a notified loop claims before it reads the timers. A/B against
main in the same window (4 × 20 trials alternating, load 11–12): no change beyond noise
(×1.01 median of the per-round ratios). Would close it: the listening thread claiming
itself (one thread hand-off, ~100 µs, but two claimers must then share the free slots),
the claim returning the claimed row and the answer (no `get_execution`/`get_message` after
it, ~100 µs), and the floor stays the answer's fsync plus one cross-process wake-up."""

WAKE_ONE = """\
Timeline of one wake in one process (2026-11-30, perf_counter_ns probes, median of 30
trials, FULL, load ~5.5; each probe adds 2–4 µs): child's last line → handler returned
105 µs (`set_output`, the end decision), → `Worker._commit` 25 µs, → `BEGIN` 140 µs (slot,
claim request, `Commit`, group commit, flock), 13 statements 260 µs, `COMMIT` 705 µs (the
fsync; 215 µs on a quiet disk), then to the parent's next line 306 µs warm (return, `_start`
56 µs; hand-off to the parked handler's thread 90 µs; `resume`'s `get_execution` 72 µs; the
wait's `statuses` ~40 µs) or 362 µs cold (`get_execution`, `load_events`, replay). On main
that last part took 580 µs warm and 590 µs cold: the ending activation woke the worker's
loop, which claimed (an empty write transaction) while the parent went on, and the
listener added more such claims for the worker's own commits. Now the loop is left asleep
after an activation commits (its commit leased what it made runnable; woken only if the
loop left work for lack of a slot, or `run(until=...)`), own commits do not count as
changes, and a woken execution with no parked handler runs on the committing thread (no
pool hand-off). A/B, in-process worker, alternating rounds of 20 trials: NORMAL, load
2.0–2.2, warm ×0.87, cold ×0.76 (p50 921 → 803 and 1,086 → 854 µs); load 11–12, warm
×0.85, cold ×0.77; FULL, load 2.2–2.4, warm ×1.00, cold ×0.92 (the fsync's variance
dominates). `python -m benchmarks wake --quick`, alternating twice (raw FULL commits
1.7–3.8 ms then: a busy disk): one process 1.51/2.06 → 1.30/1.45 ms, --no-warm-cache
1.96/2.01 → 1.63/1.68 ms. `cost`: a short execution 1,129,002 → 1,039,862 instructions
(×0.92). Tried and not kept: the claim in the commit returning the whole row so that
`resume`/`activate` skip `get_execution` (branch wake15-rows): ×1.00 warm, ×1.01 cold
(4 × 20 trials, load 2.5), `cost` ×1.01. Would close the rest: 0.32 ms leaves ~100 µs
beside the commit while the Python from the handler's end to `BEGIN` is ~250 µs; answer the
wait's completion from the end commit (`_wake_waiters` knows the targets' statuses: no
`statuses` read), fold the waiter's QUEUED and its claim into one UPDATE, less Python per
commit (decision → `Commit` → group commit). The parked handler's thread hand-off (~90 µs
loaded) stays: its frames live on its thread. On PostgreSQL every commit that changes a
status sends NOTIFY, which reaches the committing worker's own listener, so its loop still
claims after each activation there: `wakes_others` (store/notices.py) would say when not to."""

CHILDREN = """\
A child's `ChildCreated` event and row wait for the parent's next commit (flushed before a
step, a wait, a read, at the end, or every 256 children), so 200 children cost ~0.15–0.25
write transactions each at FULL. What is left is CPU and thread contention (2026-11-30,
load ~10): 70–160 ms of process CPU per 200 children (16 activation threads), the writer
busy 55–70% of the span. py-spy `--gil` of the shape (one slot, NORMAL, 30 runs): 14% of
the GIL samples in `ThreadPoolExecutor.submit` (its queue put wakes another thread), 7% in
`Condition.notify`, 5% in `WarmCache.take`'s lock — thread hand-offs — 28% in the commit
path (`GroupCommit.submit` → `apply_batch`), 25% in `activate` (`get_execution`,
`load_events`, replay). Tried: the child the end commit leases (`claim_queued`) runs next on
the committing thread instead of the pool, and the loop no longer claims after each
activation (each claim an empty write transaction): `cost` says a short execution takes
×0.92 the instructions, but A/B at load 9–10 is inside the noise (FULL ×1.16, NORMAL ×0.82,
3 rounds each; `python -m benchmarks children` alternating: 108–498 ms either way). Would
close it: fewer threads contending for the GIL (activations of short executions on one
thread, an event loop instead of a thread per activation), the claimed row returned by the
claim (no `get_execution` per child), and the writer's statements batched per group commit.
A miss on a quiet machine is a regression in `ChildCommands.create_child` / `Journal.write`
(engine/commands/children.py, engine/journal.py): check *transactions per child*."""

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

target("record: per step ≤ 1.3× one raw WAL commit", "record", "engine", FULL, "per step",
       1.3, on_ratio=True, if_missed=RECORD)
target("record: this.log ≤ 10 µs per call", "record", "engine", FULL, "this.log per call", 10)
target("replay: slope ≤ 5 µs per recorded event", "replay", "engine", FULL,
       "slope per recorded step", 5)
target("replay: dispatch, worker start → handler entered ≤ 5 ms", "replay", "engine", FULL,
       "dispatch: start → entered, K=10", 5, if_missed=DISPATCH)
target("restart: process spawn → past its wait, K=1,000 ≤ 150 ms", "replay", "engine", FULL,
       "restart: spawn → past its wait, K=1000", 150, if_missed=RESTART)
target("wake, one process: p50 ≤ 0.5 ms", "wake", "engine, one process", FULL,
       "p50: child's last line → parent", 0.5, if_missed=WAKE_ONE)
target("wake, two processes: p50 ≤ 10 ms (child on the other worker)", "wake",
       "engine, child on another process", FULL, "p50: child's last line → parent", 10)
target("wake, message from another process: p50 ≤ 2× one raw FULL commit (between its trials)", "wake",
       "engine, message from another process", FULL, "p50: answerer's last line → parent", 2,
       on_ratio=True, if_missed=WAKE_MESSAGE)
target("children: parent + 200 children ≤ 0.1 s", "children", "engine", FULL,
       "200 children, total", 100, if_missed=CHILDREN)
target("throughput: ≥ 5× the single-commit rate", "throughput", "engine", FULL,
       "durable steps/s", 5, at_least=True, on_ratio=True, if_missed=THROUGHPUT)
target("idle: worker CPU < 1 ms/s (0.1% of a core), N=10,000", "idle", "engine", FULL,
       "N=10,000: worker CPU while idle", 1)
target("idle: RSS independent of the number waiting (≤ ×1.1)", "idle", "engine", FULL,
       "RSS ratio, larger N / smaller N", 1.1)
