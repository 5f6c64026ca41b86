"""A commit that ends an activation leases the worker's next work in the same transaction,
so a worker running short executions pays one write transaction fewer per execution.
The SQLite store does this; the PostgreSQL store claims with its own SKIP LOCKED query."""

from __future__ import annotations

import time

import pytest

from engine.api import Engine
from store.events import Event, ExecutionEnded, LogRecorded
from store.model import Claim, Commit

NOOP = "def handler(system, this, inputs):\n    return None\n"
OWNER = "test-worker"

pytestmark = pytest.mark.sqlite_only("the end commit leases queued work on SQLite; PostgreSQL claims with SKIP LOCKED")


def claim_one(engine: Engine) -> tuple[str, int]:
    (claimed,) = engine.store.claim(OWNER, 1, 60, time.time())
    return claimed


def test_the_end_commit_leases_the_next_queued_execution(engine: Engine) -> None:
    engine.register_flow("noop", NOOP)
    first, second = engine.start("noop"), engine.start("noop")
    assert claim_one(engine)[0] == first
    fence = engine.get(first).fence

    ended = Event(2, time.time(), ExecutionEnded("ENDED_SUCCESS", None, {}, None))
    result = engine.store.commit(Commit(
        first, fence, events=[ended], status="ENDED_SUCCESS", output_value={}, release_lease=True,
        claim=Claim(OWNER, 60, 1),
    ))

    row = engine.get(second)
    assert result.claimed == [(second, row.fence)]
    assert (row.status, row.lease_owner, row.attempts) == ("RUNNING", OWNER, 1)
    assert engine.get(first).status == "ENDED_SUCCESS"


def test_a_commit_in_the_middle_of_an_activation_leases_nothing_more(engine: Engine) -> None:
    engine.register_flow("noop", NOOP)
    engine.start("noop")
    second = engine.start("noop")
    eid, fence = claim_one(engine)

    logged = Event(2, time.time(), LogRecorded("still running"))
    result = engine.store.commit(Commit(eid, fence, events=[logged], claim=Claim(OWNER, 60, 1)))

    assert result.claimed == []
    assert engine.get(second).status == "QUEUED"
    assert result.lease_expires == engine.get(eid).lease_expires  # what the lease check trusts after it


def test_no_more_are_leased_than_the_claim_allows(engine: Engine) -> None:
    engine.register_flow("noop", NOOP)
    first = engine.start("noop")
    queued = [engine.start("noop") for _ in range(3)]
    eid, fence = claim_one(engine)
    assert eid == first

    ended = Event(2, time.time(), ExecutionEnded("ENDED_SUCCESS", None, {}, None))
    result = engine.store.commit(Commit(
        eid, fence, events=[ended], status="ENDED_SUCCESS", release_lease=True, claim=Claim(OWNER, 60, 2),
    ))

    assert [claimed for claimed, _ in result.claimed] == queued[:2]  # in the order they were created
    assert engine.get(queued[2]).status == "QUEUED"
