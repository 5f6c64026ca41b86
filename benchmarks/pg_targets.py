"""The PostgreSQL store's targets (issue 13), read from the ``postgres`` rows of the same
run; ``if_missed`` is what RESULTS.md prints under the Targets table for a miss.
"""

from __future__ import annotations

from benchmarks.harness import target
from benchmarks.pg_engine import PROCESSES, SUBJECT

NA = "n/a"

RECORD = """\
Round trips, counted with pg_stat_statements on the throwaway server (1,000 steps of one
execution): a step is a lease check on a reading connection (`LEASE_HELD`, engine/live.py
`check_lease` before the step body) and a commit of `BEGIN` + the clock read, then the events'
INSERT and `COMMIT` - since commit b56867e the fence check and the `last_seq` move are
answered from a row read with the clock (store/pg_batch.py), so 3 round trips and one WAL
flush against the raw limit's 2 and one flush. Engine CPU per step is ~0.7-1.6 ms on this
loaded machine (psycopg's pipeline and the engine's Python; the raw limit's client is idle
while it waits). With the machine at load 8-25 each round trip waits for the backend to be
scheduled, so the ratio swings with load (x1.22 at load 8, x2.31 at load 25, same code but
the batch path). Would close it: answer `lease_held` from the lease the store itself wrote
(its expiry on the database clock, known to the writer) instead of a round trip."""

REPLAY = """\
The slope includes decoding each event and replaying its command; the raw range scan of the
same run costs 5.6-9.3 µs per row on this loaded machine (SQLite's: ~1 µs), so 10 µs is
under 2x the server's own read. Measured 10.7 µs (2.5-30.6) at load 8 and 48.7 µs at load
25: one ordered read per activation (`SELECT seq, at, body, line FROM events WHERE
execution_id = $1 AND seq > $2 ORDER BY seq`, one call per recovery in pg_stat_statements),
not a round trip per event. Re-measure on a quiet machine."""

WAKE = """\
Counted from the code (store/writes.py `apply_commit`, `_set_status`, `_wake_waiters`), not
profiled for lack of a quiet window: the child's end commit waits for ~8 answers (clock, fence,
`last_seq` move, the waits it deletes and updates, the parent made QUEUED, the claim's
RETURNING) and one WAL flush, then the woken parent's activation reads its row and log (2
round trips) and the child's output (1). ~11 round trips; on a quiet machine ~0.1 ms each
on loopback plus a ~0.7 ms flush fits 3 ms, but at load 8-25 each one waits for a backend
to be scheduled (17-32 ms p50 here; DBOS's in-process recv 25-46 ms in the same runs).
Would close it: a PL/pgSQL function for the end commit's wake of waiters (one round trip
for `_wake_waiters`), and the parent's row and events read in one statement."""

THROUGHPUT = """\
The group commit was bound by round trips, not CPU: py-spy of `engine_proc throughput` on
PostgreSQL (16 executions) showed the leader in `psycopg Connection.wait` for most samples
and the other threads waiting for it; each commit of a batch waited for 3 answers in turn
(fence, `last_seq`, a per-unit sync). Commit b56867e reads every row of a batch of plain step
commits with the clock in one round trip (store/pg_batch.py): A/B in one window, 16
executions on one worker, 0.06-0.56k -> 0.73-1.05k steps/s, CPU per step 540 -> 420 µs.
What is left binds on the cores: both were 100% busy in every throughput run (other
helpers' work included: load 8-25 on 2 cores), and the engine spends ~0.4 ms of CPU per
durable step, the server more; more processes then only add contention (2-8 processes
below 1). DBOS on the same server made 170-370 steps/s, so 10x is 1.7-3.7k steps/s: about
the whole of a quiet 2-core machine's CPU at today's cost per step. Would close it:
less client CPU per step (psycopg pipeline bookkeeping per statement; one multi-row
INSERT for a batch's events instead of one per commit) and a quiet machine."""

target("postgres record: per step ≤ 1.5× one raw psycopg insert+commit", "record", SUBJECT, NA,
       "per step", 1.5, on_ratio=True, if_missed=RECORD)
target("postgres replay: slope ≤ 10 µs per recorded event", "replay", SUBJECT, NA,
       "slope per recorded step", 10, if_missed=REPLAY)
target("postgres wake, child on another process: p50 ≤ 3 ms", "wake", f"{SUBJECT}, child on another process",
       NA, "p50: child's last line → parent", 3, if_missed=WAKE)
target("postgres wake, message from another process: p50 ≤ 3 ms", "wake",
       f"{SUBJECT}, message from another process", NA, "p50: answerer's last line → parent", 3)
for count in PROCESSES:
    plural = "es" if count > 1 else ""
    target(f"postgres throughput: ≥ 10× DBOS's steps/s, {count} process{plural}", "throughput",
           "engine ÷ dbos, postgres", NA, f"steps/s, {count} process{plural}", 10, at_least=True,
           if_missed=THROUGHPUT if count == 1 else "")
target("postgres throughput: 2 processes ≥ 1 process", "throughput", SUBJECT, NA,
       "steps/s, 2 processes ÷ 1 process", 1.0, at_least=True,
       if_missed="Both cores were busy with one process already (see the throughput miss): the cores bind.")
