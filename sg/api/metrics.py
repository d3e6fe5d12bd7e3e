"""Prometheus metrics of ``sg-api``: requests, and each service's liveness at scrape time.

Request metrics accumulate in a private registry (so several apps in one process,
as in tests, never collide). ``sg_service_up`` is not kept between scrapes: each
scrape renders it from one fresh ``ServiceGroup.list()``.

Every label set is closed: a route is a template of the route table or ``other``, a
method one of :data:`METHODS` or ``other``, so no client can grow ``/metrics``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sg.api.errors import ROUTE_KEY
from sg.lazylog import get_logger
from sg.model import ServiceStatus

__all__ = ["METHODS", "ApiMetrics", "RequestMetrics"]

log = get_logger("sg.api")

#: Latency buckets in seconds: a listing of 1,000 services takes milliseconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: HTTP methods counted under their own name; any other is counted as ``other``.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
#: The label of a request outside the closed sets.
OTHER = "other"


class _Liveness(Collector):
    """One scrape's view of the services."""

    def __init__(self, statuses: Sequence[ServiceStatus] | None) -> None:
        self.statuses = statuses

    def collect(self) -> Iterator[Metric]:
        listed = GaugeMetricFamily(
            "sg_api_listing_success", "1 if this scrape could list the services, else 0 (store unreachable)"
        )
        listed.add_metric([], 0.0 if self.statuses is None else 1.0)
        yield listed
        up = GaugeMetricFamily(
            "sg_service_up",
            "1 if the service is up (fresh record and driver member), 0 if down or unknown",
            labels=["topic", "binary", "host"],
        )
        for status in self.statuses or ():
            service = status.service
            up.add_metric([service.topic, service.binary, service.host], 1.0 if status.is_up else 0.0)
        yield up


class ApiMetrics:
    """Request counters and latency histograms, plus the scrape-time liveness gauges.

    ``routes`` are the route templates counted under their own name; any other
    route is counted as ``other``. Requests to ``untimed`` routes (event streams, which
    last as long as the client stays) are counted but kept out of the latency histogram.
    """

    def __init__(self, routes: Iterable[str], untimed: Iterable[str] = ()) -> None:
        self.routes = frozenset(routes)
        self.untimed = frozenset(untimed)
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sg_api_requests",
            "HTTP requests handled, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sg_api_request_duration_seconds",
            "Time to handle a request, by route template and method",
            ["route", "method"],
            registry=self.registry,
            buckets=BUCKETS,
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one handled request."""
        route = route if route in self.routes else OTHER
        method = method if method in METHODS else OTHER
        self.requests.labels(route, method, str(status)).inc()
        if route not in self.untimed:
            self.latency.labels(route, method).observe(seconds)

    def render(self, statuses: Sequence[ServiceStatus] | None) -> bytes:
        """The text exposition: request metrics, then ``sg_service_up`` from ``statuses``
        (``None`` when the listing failed)."""
        scrape = CollectorRegistry()
        scrape.register(_Liveness(statuses))
        return generate_latest(self.registry) + generate_latest(scrape)


class RequestMetrics:
    """Pure ASGI middleware: counts and times every request by route template."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            elapsed = time.perf_counter() - started
            # The endpoint names its route template; a request no route took has none.
            route = scope.get(ROUTE_KEY, OTHER)
            self.metrics.observe(route, scope["method"], status, elapsed)
            log.debug(
                "request",
                method=scope["method"],
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )
