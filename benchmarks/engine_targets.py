"""The engine's performance targets, read from rows of the same run (FULL, the default,
unless a target names NORMAL).

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
A step commit runs 4 statements (`BEGIN IMMEDIATE`, one fenced `UPDATE executions SET
last_seq .. RETURNING` that checks the lease, the event `INSERT`, `COMMIT`; SQLite trace
callback, 1,000 steps: 4.04 per step) where the raw limit runs 3, and it dirties two pages
(the events leaf and the executions row) where the raw commit dirties one. At FULL the
fsync is most of both spans, so the ratio follows the disk: compare the run's min–max and
the load in the header. CPU per step single-threaded at NORMAL was 65–75 µs on 2026-11-30
under load 6–14 (thread CPU: the activation thread 56–57 µs, the worker loop 5–6, the rest
4–6), ~31 µs on a quiet machine. Would close it: stop updating `executions.last_seq` per
step (derive it from the events primary key, which already refuses a duplicate seq, and
check the fence with a read the writer holds), so a step writes one page like the raw
commit; see CPU_STEP for the Python."""

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
Spawn → past the wait at K=1,000 is interpreter start (the *bare start* row: ~20 ms
quiet) + imports + Engine() (~2 ms) + dispatch and replay (~8 ms; the slope × 1,000 is
~1.7 ms), so the target allows ~30 ms and the imports are the gap. Until commit "A process
on SQLite no longer imports psycopg" every process imported psycopg (and asyncio with it)
at start, through `store.dialect.INTEGRITY_ERRORS`: `python -X importtime -c 'import
engine.api'` 213 ms → 99 ms, wall 0.29–0.39 s → 0.12 s under load on 2026-11-30; a test
now keeps psycopg out of a SQLite worker. What is left of `import engine.api` (~99 ms
under load, `-X importtime`): `engine.worker` ~54 ms (of which `engine.git_actions` →
`engine.git_sync` ~24 ms, croniter ~12 ms via `engine.schedules`), `engine.connectors`
~29 ms (msgspec ~20 ms is needed anyway). Would close it: import croniter inside
`engine.schedules`' functions and the git sync modules only when a project has a git
origin, and make `engine/connectors/registry.py` map names to `"module:Class"` strings
imported in `get_connector` (measured earlier with a stand-in: −30 ms)."""

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
loaded) stays: its frames live on its thread. On PostgreSQL a commit sends NOTIFY only when
`wakes_others` (store/notices.py) says other workers have work, so the same holds there."""

REPLAY = """\
The slope was 1.66 µs per recorded step on 2026-11-27 (commit 234359f); since then every
replayed call digests its arguments to refuse a replay whose arguments changed (the
guarantee of `tests/test_replay_identity.py`): cProfile with a thread clock over a
recovery of 20,000 recorded steps gives `arguments.step_arguments` half of
`StepCommands.step`'s time, `Journal.recorded` (match, compare digests) 29%, reviving the
recorded result 7%. timeit on 2026-11-30: `step_arguments(fn, (12345,), {})` 1.85 µs per
call, of which the canonical encoding 0.17 µs, blake2b 0.37 µs, the secret-name check
0.13 µs, the rest building the `Arg` and reading the function's parameter names. Would
close it: compute an argument's shortened form only when a diagnosis needs it, cache the
parameter names per code object, and digest plain scalars without the canonical tree
walk — about 1 µs of the 1.85; not tried for lack of time."""

CPU_STEP = """\
Instructions (`python -m benchmarks cost`, noise-free): 211k per durable step, of which
the 4 SQL statements are ~107k (`sqlite3_step` ~75k, the sqlite3 module's statement cache,
binding and GIL hand-offs ~32k; a bare loop of the same 4 statements costs 86–91k) and
Python ~105k: ~1,300 bytecodes in ~45 calls from `this.step` down through `StepCommands`,
`Journal`, `StoreLive`, `GroupCommit`, `SqliteStore._apply_batch` and `apply_commit`. The
largest single Python item is the argument digest (`arguments.step_arguments`: canonical
msgpack + blake2b + repr per argument, ~15% of a step's time under cProfile with a
thread clock), then the caller-line frame walk, the interrupt shield, the write lock (two
`flock` calls per transaction) and the group commit's locks. CPU time moves far more than
instructions here: 65–75 µs per step single-threaded under load 6–14 on 2026-11-30, ~31 µs
on a quiet machine; with 16 executions the threads also contend for the GIL. Tried in this
issue: trusting the lease the activation's row read found (one read fewer per activation,
none per step) and a cheaper secret-name check of recorded arguments: 215k → 211k per step
together (runs differ by ~1%). Would close it: ≤ 40 µs needs ~2× fewer instructions per step — skipping layers the
design keeps (flow_api → command group → journal → live backend → group commit → store)
for a plain step: e.g. a step whose commit is uncontended written straight from the
journal to a prepared statement pair, and a digest cached per (function, argument types)
where the value is a plain scalar."""

THROUGHPUT_NORMAL = """\
At NORMAL no fsync is shared: the raw commit (~29 µs quiet) is itself CPU-bound, so 1×
means a whole engine step — 4 statements where the raw loop runs 3, plus the engine's
Python — costs no more than a bare `INSERT` + `COMMIT` in a tight loop. Measured
2026-11-30 (load 6–14): 16 executions on one worker made 6–8k steps/s at NORMAL with 1.4–2.2
steps per transaction (group commit batches stay small when commits are fast) and 60–92 µs
of CPU per step across both cores; the `--tiny` run gave ×0.11–0.13 the single-commit rate.
Would close it: CPU per step well under the raw commit's (see CPU_STEP), or a group commit
that holds its batch open at NORMAL for followers (more steps per transaction, at some
latency) — neither tried."""

SHORT = """\
A one-step execution is claim, two reads (the row, the log), replay, the step's commit
and the end commit. Statements per execution (SQLite trace callback, 1,000 executions,
concurrency 16): 78d0967 21.2 statements in 1.31 write transactions, now 13.3 in 0.88 (the
ending commit leases the next queued execution, no savepoints for a batch of one, the
fence check folded into the append; in this issue: no lease read before the first step
body — the activation's row read just checked it — and the end's append, fence check and
status in one UPDATE). Instructions per short execution 1.34M → 1.09M (×1.23). But the
engine's Python per execution did not shrink with the SQL: at concurrency 16 and NORMAL
both commits measured the same CPU per execution in the same minutes (78d0967 325–362 µs,
now 280–396 µs; at concurrency 1 78d0967 510 µs, now 399 µs; FULL 967 vs 678 µs), and a
quick probe of this row (3 runs, load ~10) gave 0.78× (0.47–2.43×) where the target asks 4×. Where the time goes (cProfile, thread
clock, concurrency 1): the two commits through the group commit ~43% of the activation
thread (SQL ~20% of all), the worker loop's tick ~13% (its claims, the next-wake
`SELECT min(t)`, Condition hand-offs: ~13 lock enter/exit per execution), row and log
reads ~9%, building the replay context and its five command groups ~4%, the argument
digest ~4%. Would close it: run the next claimed execution on the thread that ended the
last one (no pool submit and queue hand-off per execution), read the row and the log in
one statement, build the command groups lazily, and commit a one-step handler's end
without a second transaction when nothing ran after its step (needs a design decision:
today the step's result is durable before the handler goes on)."""

INSTRUCTIONS = """\
Counted by `python -m benchmarks cost --against 78d0967` (callgrind, steps N=500, short
N=300) on 2026-11-30 at fb7b5d2: 341.2k → 217.3k instructions per durable step (×1.57) and
1.34M → 1.09M per short execution (×1.23); the same code counted 211–218k per step in
separate runs that day, so runs differ by ~3%, not the 1% the method says. The SQL of a step is at its floor for one transaction per
step (~107k of the 211k: a bare loop of the same statements costs 86–91k), so ×3 (≤ 114k)
would need the Python part below ~10k instructions — about 1/10 of today's layers; see
CPU_STEP and benchmarks/cost_notes.md for where they go."""

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
CPU-bound on the two cores: 16 executions × 500 steps on one worker at NORMAL cost
60–92 µs of process CPU per step on 2026-11-30 (load 6–14; 1, 4 and 16 executions: 60–76,
63–92, 65–84 µs), 1.4–2.2 steps per transaction at NORMAL and ~8 at FULL. At FULL the
fsync is shared by ~8 steps, so 5× the single-commit rate (≤ 35–45 µs per step on this
disk) needs less CPU per step, not fewer syncs: see CPU_STEP. Tried before (monkeypatched,
no change beyond ±10% noise): a bare lock for group-commit tickets, batch-level statements,
`sys.setswitchinterval(0.0002)`, two worker processes (worse: they wait on SQLite's lock).
The group commit's leader shares the GIL with the handler threads, and sqlite3 releases
the GIL around every statement: each step pays two thread hand-offs under load (submit →
leader → waiter). Would close it: activations on one thread (an event loop instead of a
thread per activation) so that no hand-off is needed, and fewer Python layers per step."""

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
target("restart, K=1,000: spawn → past its wait ≤ 1.5× (bare start + replay slope × 1,000)",
       "replay", "engine", FULL, f"restart ÷ (bare start + slope × {RESTART_K:,})", 1.5,
       if_missed=RESTART)
target(f"instructions per durable step ≥ 3× fewer than {BASELINE}", COST, "engine", "n/a",
       f"instructions per durable step, {BASELINE} ÷ this", 3, at_least=True, if_missed=INSTRUCTIONS,
       absent=f"see `python -m benchmarks cost --against {BASELINE}`")
target("record: per step ≤ 1.3× one raw WAL commit", "record", "engine", FULL, "per step",
       1.3, on_ratio=True, if_missed=RECORD)
target("record: this.log ≤ 10 µs per call", "record", "engine", FULL, "this.log per call", 10)
target("replay: slope ≤ 5 µs per recorded event", "replay", "engine", FULL,
       "slope per recorded step", 5, if_missed=REPLAY)
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
