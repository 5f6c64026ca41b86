"""The PostgreSQL store's targets (issue 13), read from the ``postgres`` rows of the same
run; ``if_missed`` is what RESULTS.md prints under the Targets table for a miss.
"""

from __future__ import annotations

from benchmarks.harness import target
from benchmarks.pg_engine import PROCESSES, SUBJECT

NA = "n/a"

RECORD = """\
Profiled with pg_stat_statements (1,000 steps) and py-spy. The lease check before a step
body was already answered from the previous commit (3 `LEASE_HELD` calls per 1,000 steps;
none since store/pg_held.py answers from the leases the store wrote). A step was 2 round
trips and 4 statements (`BEGIN` + clock + row read `FOR UPDATE`; `UPDATE last_seq` +
`INSERT` + `COMMIT`); it is now one CTE (store/pg_append.py: move `last_seq` under the
fence, insert the events only if that row moved) sent with `BEGIN` and `COMMIT` in one
pipeline: 1 round trip and 1 WAL flush against the raw limit's 2 and 1. A/B, alternating
in one window: at load 11 x1.40 -> x1.07 the raw insert+commit (CPU per step 553 -> 340
µs), at load 4 x2.89 -> x1.51 (394 -> 219 µs); the harness's rows, minutes apart, swing
more (x2.88, min x1.41, with the raw limit timed before other helpers' load rose). What
is left is that client CPU (psycopg's pipeline, msgspec, the replay context) competing
with the server for the 2 cores: under load every wait for the server is also a wait for
a core. Would close it: less Python per step (one encode per event, no per-statement
pipeline bookkeeping), and a quiet machine."""

REPLAY = """\
Not changed here. One ordered read per activation (`SELECT seq, at, body, line FROM
events WHERE execution_id = $1 AND seq > $2 ORDER BY seq`, one call per recovery in
pg_stat_statements), not a round trip per event; the rest of the slope is decoding each
event and replaying its command in Python. Measured 19.1 µs at load ~4 with the raw range
scan at 2.0 µs per row in the same run (10.7 µs at load 8 and 48.7 µs at load 25 earlier):
it moves with the load, as CPU does. Would close it: a cheaper decode per event (msgspec
Struct decoding of the body only when the command reads it) and a quiet machine."""

WAKE = """\
Timed per phase (timestamps in both workers, 15 trials at load 3.5-5): the child's last
line -> its end commit 0.2 ms; the end commit 5.1-5.6 ms p50 (min 2.4) while a raw
insert+commit took 2.2-2.8 ms in the same minutes; -> the parent's activation 0.1-0.5 ms;
its row 0.5-0.7 ms, its events 0.3-0.5 ms, replay to its next line 0.5-0.7 ms. The end
commit waited for 8 answers; now 4: its row read with the clock (store/pg_batch.py), the
waits of the ended child deleted without reading counts, the wake of waiters one call of
a PL/pgSQL function the schema creates (`engine_wake_waiters`), the claim of the woken
parent, `COMMIT`; and it no longer NOTIFYs every worker into a claim when it leased what
it woke (store.notices.wakes_others). A/B, 4 x 20 trials at load 5-6.6: p50 5.2-6.0 ->
3.9-5.8 ms; the harness's run at load ~4: 9.05 -> 4.63 ms (DBOS's recv 8.46 ms). Would close it: the claim of the woken parent inside that function (one round
trip), the parent's row and events in one round trip (a store read for worker.activate),
and a quiet machine: the WAL flush alone was ~2.5 ms here, the target assumes ~0.4 ms."""

MESSAGE = """\
The path holds two WAL flushes: the answer's commit, then, after its NOTIFY reaches the
parent's worker, that worker's claim transaction (2 round trips and a flush), then the
parent's row and events. A/B at load 6.7 (2 x 15 trials): p50 12.1 / 7.6 -> 7.6 / 6.2 ms
(no claims set off by other commits' NOTIFYs); the harness's run: 6.34 -> 5.21 ms. Tried and rejected: committing the claim
asynchronously (`synchronous_commit = off`) - a claim lost in a server crash would let
the same fence be issued twice. Would close it: a quiet machine (two flushes of ~0.4 ms
fit 3 ms), or the answer's transaction leasing the execution to a worker that listens."""

THROUGHPUT = """\
Bound by the cores: machine CPU 97-99.5% busy in every throughput run (other helpers'
work included, load 5-11). Commit b56867e removed the round trips per commit of a batch
(py-spy had shown the leader in `psycopg Connection.wait`); now a batch of bare step
commits is one round trip (store/pg_append.py), and the engine's CPU per step went 553 ->
219-340 µs (A/B, one execution). The harness's runs before -> after: 1.9-2.9k ->
3.3-3.6k steps/s with 1-8 processes, against DBOS's 218-486: x3.9-8.6 -> x7.3-10.1 (met
with 8 processes). 10x DBOS is 3.4-4.9k steps/s: about the whole of a quiet 2-core
machine at the engine's and the server's CPU per step. More processes add contention for the same
two cores. Would close it: less client CPU per step and a machine with more cores (or
a quiet one)."""

target("postgres record: per step ≤ 1.5× one raw psycopg insert+commit", "record", SUBJECT, NA,
       "per step", 1.5, on_ratio=True, if_missed=RECORD)
target("postgres replay: slope ≤ 10 µs per recorded event", "replay", SUBJECT, NA,
       "slope per recorded step", 10, if_missed=REPLAY)
target("postgres wake, child on another process: p50 ≤ 3 ms", "wake", f"{SUBJECT}, child on another process",
       NA, "p50: child's last line → parent", 3, if_missed=WAKE)
target("postgres wake, message from another process: p50 ≤ 3 ms", "wake",
       f"{SUBJECT}, message from another process", NA, "p50: answerer's last line → parent", 3,
       if_missed=MESSAGE)
for count in PROCESSES:
    plural = "es" if count > 1 else ""
    target(f"postgres throughput: ≥ 10× DBOS's steps/s, {count} process{plural}", "throughput",
           "engine ÷ dbos, postgres", NA, f"steps/s, {count} process{plural}", 10, at_least=True,
           if_missed=THROUGHPUT if count == 1 else "")
target("postgres throughput: 2 processes ≥ 1 process", "throughput", SUBJECT, NA,
       "steps/s, 2 processes ÷ 1 process", 1.0, at_least=True,
       if_missed="One process made 3.6k steps/s with both cores 81% busy (the server's backends and other "
                 "helpers' work included), two the same at 91%, four at 99%: the cores bind before a second "
                 "process adds anything (see the throughput miss).")
