"""Prometheus metrics of one agent, in a registry of its own (tests run several agents)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from edge_agent.bus import Bus
from edge_agent.health import HealthRegistry
from edge_agent.supervisor import ServiceState


class _LiveCollector(Collector):
    """Reads device health and bus queues at scrape time instead of updating gauges per poll."""

    def __init__(self, health: HealthRegistry, bus: Bus) -> None:
        self._health = health
        self._bus = bus

    def collect(self):  # type: ignore[no-untyped-def]
        connected = GaugeMetricFamily(
            "beerflow_device_connected",
            "1 when the device answered its last poll",
            labels=["device"],
        )
        last_seen = GaugeMetricFamily(
            "beerflow_device_last_seen_timestamp_seconds",
            "When the device last answered",
            labels=["device"],
        )
        errors = GaugeMetricFamily(
            "beerflow_device_errors", "Failed polls since start", labels=["device"]
        )
        malformed = GaugeMetricFamily(
            "beerflow_device_malformed", "Malformed responses since start", labels=["device"]
        )
        transient = GaugeMetricFamily(
            "beerflow_device_transient_errors",
            "Failed polls that did not start an outage (a single bad frame or timeout)",
            labels=["device"],
        )
        skew = GaugeMetricFamily(
            "beerflow_device_clock_skew",
            "Messages whose device time was too far off, stamped on arrival",
            labels=["device"],
        )
        stale = GaugeMetricFamily(
            "beerflow_device_stale_replies",
            "Replies that answered another request (wrong transaction id), discarded",
            labels=["device"],
        )
        for h in self._health.all():
            transient.add_metric([h.device_id], h.transient)
            stale.add_metric([h.device_id], h.stale_replies)
            connected.add_metric([h.device_id], 1.0 if h.connected else 0.0)
            skew.add_metric([h.device_id], h.clock_skew)
            errors.add_metric([h.device_id], h.errors)
            malformed.add_metric([h.device_id], h.malformed)
            if h.last_seen is not None:
                last_seen.add_metric([h.device_id], h.last_seen)
        depth = GaugeMetricFamily(
            "beerflow_bus_queue_depth", "Messages waiting per subscriber", labels=["subscriber"]
        )
        dropped = GaugeMetricFamily(
            "beerflow_bus_dropped", "Messages dropped by overflow policy", labels=["subscriber"]
        )
        stalls = GaugeMetricFamily(
            "beerflow_bus_stalls",
            "Times producers waited for a full subscriber",
            labels=["subscriber"],
        )
        for sub in self._bus.subscriptions:
            depth.add_metric([sub.name], len(sub.channel))
            dropped.add_metric([sub.name], sub.dropped)
            stalls.add_metric([sub.name], sub.stalls)
        yield from (
            connected,
            last_seen,
            errors,
            malformed,
            transient,
            skew,
            stale,
            depth,
            dropped,
            stalls,
        )


class _ServiceCollector(Collector):
    """The supervisor's view of every long-lived service, read at scrape time."""

    def __init__(self, states: Callable[[], dict[str, ServiceState]]) -> None:
        self._states = states

    def collect(self):  # type: ignore[no-untyped-def]
        up = GaugeMetricFamily(
            "beerflow_service_up",
            "1 while the service runs; 0 when it crashed, is wedged, restarting or failed",
            labels=["service"],
        )
        restarts = GaugeMetricFamily(
            "beerflow_service_restarts",
            "Restarts by the supervisor since start",
            labels=["service"],
        )
        stalls = GaugeMetricFamily(
            "beerflow_service_stalls",
            "Times the service was found busy with no progress (wedged)",
            labels=["service"],
        )
        for name, st in sorted(self._states().items()):
            up.add_metric([name], 1.0 if st.state in ("running", "stopped") else 0.0)
            restarts.add_metric([name], st.restarts)
            stalls.add_metric([name], st.stalls)
        yield from (up, restarts, stalls)


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.readings_accepted = Counter(
            "beerflow_readings_accepted", "Readings committed to the store", registry=r
        )
        self.events_accepted = Counter(
            "beerflow_events_accepted", "Events committed to the store", registry=r
        )
        self.commits = Counter("beerflow_store_commits", "Store transactions", registry=r)
        self.commit_seconds = Histogram(
            "beerflow_store_commit_seconds",
            "Time to write and commit one batch",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.batch_size = Gauge(
            "beerflow_store_last_batch", "Records in the last commit", registry=r
        )

    def watch(self, health: HealthRegistry, bus: Bus) -> None:
        self.registry.register(_LiveCollector(health, bus))

    def watch_services(self, states: Callable[[], dict[str, ServiceState]]) -> None:
        self.registry.register(_ServiceCollector(states))

    def on_commit(self, readings: int, events: int, seconds: float) -> None:
        self.readings_accepted.inc(readings)
        self.events_accepted.inc(events)
        self.commits.inc()
        self.commit_seconds.observe(seconds)
        self.batch_size.set(readings + events)
