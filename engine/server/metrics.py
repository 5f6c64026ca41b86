"""``GET /metrics``: Prometheus metrics of the store and of this process's worker.

Gauges (read from the database at each scrape, so they count the work of every worker
on it): ``engine_executions{status}`` and ``engine_queue_depth``. Counters and
histograms (from the embedded worker of this ``engine serve``; ``--no-worker``: zero):
``engine_commits_total``, ``engine_decisions_total{decision}``, ``engine_steps_total``, ``engine_lease_takeovers_total``,
``engine_activation_seconds`` and ``engine_wake_latency_seconds``.

The page needs a token, as the API does (Prometheus: ``authorization: {credentials: TOKEN}``
in the scrape config): it tells who runs what and how much, and it is served on the
same port as the API, which may listen on other addresses than loopback.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.decision import Decision
from engine.server.api import call
from engine.server.auth import guarded
from store.base import Store
from store.events import Event
from store.metrics import runnable_count
from store.model import STATUSES, ExecutionRow

#: Histogram buckets in seconds, from a fast activation to a slow wake-up.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _StoreCollector(Collector):
    """The gauges, read from the store at each scrape."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_status = GaugeMetricFamily("engine_executions", "Executions in the store by status", labels=["status"])
        counts = self.store.count_by_status()
        for status in sorted({*STATUSES, *counts}):
            by_status.add_metric([status], counts.get(status, 0))
        yield by_status
        yield GaugeMetricFamily("engine_queue_depth", "Executions ready to run that no worker has claimed "
                                "(queued, timer due, or lease expired)", value=runnable_count(self.store, time.time()))


class Metrics:
    """The metrics of one ``engine serve``; pass it as the embedded worker's observer."""

    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StoreCollector(store))
        self.commits = Counter("engine_commits", "Transactions of activations (a command's events, or a "
                               "decision) committed by this process's worker", registry=self.registry)
        self.decisions = Counter("engine_decisions", "Activation decisions committed by this process's worker",
                                 ["decision"], registry=self.registry)
        self.steps = Counter("engine_steps", "this.step results recorded by this process's worker",
                             registry=self.registry)
        self.takeovers = Counter("engine_lease_takeovers", "Executions claimed again after an activation that did "
                                 "not decide (its worker died, stalled or failed)", registry=self.registry)
        self.activation = Histogram("engine_activation_seconds", "From an activation's start to its committed "
                                    "decision", buckets=_BUCKETS, registry=self.registry)
        self.wake = Histogram("engine_wake_latency_seconds", "From when a woken execution became runnable (timer "
                              "due, child ended, message answered) to its activation", buckets=_BUCKETS,
                              registry=self.registry)

    def claimed(self, row: ExecutionRow, now: float) -> None:
        if row.attempts > 1:
            self.takeovers.inc()
        elif row.wake_at is not None:
            self.wake.observe(max(0.0, now - row.wake_at))

    def decided(self, decision: Decision, seconds: float) -> None:
        if decision.kind == "aborted":
            return
        self.decisions.labels(decision.kind).inc()
        self.activation.observe(seconds)

    def committed(self, events: list[Event]) -> None:
        self.commits.inc()
        self.steps.inc(sum(1 for event in events if event.kind == "step"))


async def _metrics(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    body = await call(generate_latest, metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def routes() -> list[Route]:
    return [Route("/metrics", guarded(_metrics), methods=["GET"])]
