"""The process's Prometheus metrics (GET /metrics), in a registry each Metrics object owns: HTTP
requests and latency by route pattern, WebSocket events, 429s, sweeps; sockets and the database
pool are read when scraped."""

from __future__ import annotations

import bisect
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

if TYPE_CHECKING:
    from expertconnect.db import Database
    from expertconnect.realtime.hub import Hub

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Most API answers take 1-10 ms (docs/performance.md); the upper buckets catch a stalled
# database (acquire_timeout 5 s, command_timeout 10 s).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        # Not prometheus_client's global REGISTRY: the series belong to this object alone.
        self.registry = CollectorRegistry(auto_describe=True)
        # Requests are counted on every answer, so their series are kept in plain counters and
        # handed to prometheus_client when scraped (_RequestCollector): a Counter and a
        # Histogram child take a lock each per update, 1.3-2.2 us a request (timeit); a dict
        # update and a bisect take 0.35-0.6 us.
        self._requests = _RequestCollector()
        self.registry.register(self._requests)
        self.events_pushed = Counter(
            "expertconnect_ws_events_pushed",
            "Live events sent to WebSockets",
            registry=self.registry,
        )
        self.events_replayed = Counter(
            "expertconnect_ws_events_replayed",
            "Logged events sent to reconnecting WebSockets (last_event_id)",
            registry=self.registry,
        )
        self.resync_required = Counter(
            "expertconnect_ws_resync_required",
            "resync_required frames sent (replay asked for purged or unknown events)",
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "expertconnect_rate_limited",
            "Requests and chat messages refused by a rate limit, by scope",
            ["scope"],
            registry=self.registry,
        )
        self.sweep_runs = Counter(
            "expertconnect_sweep_runs",
            "Periodic sweeps completed, by sweep",
            ["sweep"],
            registry=self.registry,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self._requests.observe(route, method, status, seconds)

    async def sweep(self, name: str, run: Awaitable[Any]) -> None:
        """Await one run of a periodic sweep, counting it when done (successful or not)."""
        try:
            await run
        finally:
            self.sweep_runs.labels(name).inc()

    def watch(self, hub: Hub, db: Database) -> None:
        """Read open sockets and the pool's state when scraped, not on every change."""
        self.registry.register(_StateCollector(hub, db))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


@dataclass
class _Latency:
    """One route's latency histogram: counts per bucket (the last one: above every bound)."""

    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0


class _RequestCollector:
    """Requests by (route, method, status) and latency by route, counted on the event loop
    (so without locks) and exposed as a counter and a histogram when scraped."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], int] = {}
        self._latency: dict[str, _Latency] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        self._counts[key] = self._counts.get(key, 0) + 1
        latency = self._latency.get(route)
        if latency is None:
            latency = self._latency[route] = _Latency()
        # A bucket counts the answers up to and including its bound ("le").
        latency.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        latency.total += seconds

    def describe(self) -> list[Metric]:
        return []  # series are known only when collected

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "expertconnect_http_requests",
            "HTTP requests answered, by route pattern, method and status",
            labels=["route", "method", "status"],
        )
        for (route, method, status), count in self._counts.items():
            requests.add_metric([route, method, str(status)], count)
        yield requests
        latency = HistogramMetricFamily(
            "expertconnect_http_request_duration_seconds",
            "Time from a request's first byte to its answer, by route pattern",
            labels=["route"],
        )
        for route, histogram in self._latency.items():
            cumulative, buckets = 0, []
            for bound, count in zip(
                (*LATENCY_BUCKETS, float("inf")), histogram.buckets, strict=True
            ):
                cumulative += count
                buckets.append((floatToGoString(bound), cumulative))
            latency.add_metric([route], buckets, histogram.total)
        yield latency


class _StateCollector:
    def __init__(self, hub: Hub, db: Database) -> None:
        self.hub = hub
        self.db = db

    def describe(self) -> list[Metric]:
        return []  # series are known only when collected; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        sockets = self.hub.socket_count()
        yield GaugeMetricFamily("expertconnect_ws_open", "WebSockets open", value=sockets)
        pool = self.db.pool
        size = pool.get_size()
        yield GaugeMetricFamily(
            "expertconnect_db_pool_size", "Database connections open in the pool", value=size
        )
        yield GaugeMetricFamily(
            "expertconnect_db_pool_in_use",
            "Database connections handed out",
            value=size - pool.get_idle_size(),
        )
        yield GaugeMetricFamily(
            "expertconnect_db_pool_max", "database.pool_max", value=pool.get_max_size()
        )
        yield CounterMetricFamily(
            "expertconnect_db_unavailable",
            "Database calls answered as unavailable (503 to a request; a closed socket or a "
            "skipped sweep elsewhere)",
            value=self.db.unavailable_total,
        )
