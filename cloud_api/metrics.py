"""Prometheus metrics of the cloud service, in a registry of its own (tests run several clouds).

Labels stay bounded: a route is its pattern (``/v1/boxes/{box}/status``), never the raw path,
and the per-tenant counters are keyed by tenant id, which an operator creates.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from edge_agent import __version__

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


@dataclass(frozen=True, slots=True)
class IngestObservation:
    """One envelope the cloud stored: who sent it and how many records of each stream."""

    tenant: str
    venue: str
    box: str
    records: dict[str, int]
    seconds: float


class CloudMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "beerflow_cloud_http_requests",
            "HTTP requests answered, by route pattern, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "beerflow_cloud_http_request_seconds",
            "Time to answer one HTTP request, by route pattern",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.envelopes = Counter(
            "beerflow_cloud_ingest_envelopes",
            "Envelopes authenticated and stored, per tenant",
            ["tenant"],
            registry=r,
        )
        self.records = Counter(
            "beerflow_cloud_ingest_records",
            "Records stored (duplicates included: storing is idempotent), per tenant and stream",
            ["tenant", "stream"],
            registry=r,
        )
        self.ingest_seconds = Histogram(
            "beerflow_cloud_ingest_seconds",
            "Time to open, check and commit one envelope",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.refused = Counter(
            "beerflow_cloud_ingest_refused",
            "Envelopes refused, by HTTP status",
            ["status"],
            registry=r,
        )
        self.enrolments = Counter(
            "beerflow_cloud_enrolments", "Boxes enrolled, per tenant", ["tenant"], registry=r
        )
        self.status_reports = Counter(
            "beerflow_cloud_box_status_reports",
            "Status reports received from boxes, per tenant",
            ["tenant"],
            registry=r,
        )
        info = Gauge(
            "beerflow_cloud_build_info", "Always 1; the version as a label", ["version"], registry=r
        )
        info.labels(__version__).set(1)
        self.started = Gauge(
            "beerflow_cloud_start_time_seconds", "When this process started", registry=r
        )
        self.started.set(time.time())

    def on_ingest(self, obs: IngestObservation) -> None:
        self.envelopes.labels(obs.tenant).inc()
        for stream, n in obs.records.items():
            self.records.labels(obs.tenant, stream).inc(n)
        self.ingest_seconds.observe(obs.seconds)

    def middleware(self) -> Any:  # an aiohttp middleware
        @web.middleware
        async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
            info = request.match_info.route.resource
            route = info.canonical if info is not None else "unmatched"
            t0 = time.perf_counter()
            status = 500
            try:
                resp = await handler(request)
                status = resp.status
                return resp
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                self.request_seconds.labels(route, request.method).observe(time.perf_counter() - t0)
                self.requests.labels(route, request.method, str(status)).inc()

        return observe
