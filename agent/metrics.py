"""Prometheus metrics of ``sg-agent``, served on ``metrics_listen`` (off by default).

Beat latency is observed through the heartbeat's ``observer`` hook; counters and
gauges (beats, failures, re-joins, last successful beat age, store clock skew) are
read from each heartbeat's ``stats`` at scrape time, so they are never stale.

The server is a tiny HTTP/1.1 responder on anyio (one request per connection):
it runs in the agent's own task group, with no thread and no signal handlers of
its own, and a broken scraper can never disturb the beats.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import anyio
import structlog
from anyio.abc import SocketStream, TaskStatus
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sg.config import parse_listen
from sg.heartbeat import Heartbeat
from sg.model import ServiceKey

__all__ = ["AgentMetrics"]

log = structlog.get_logger("agent.metrics")

LABELS = ["topic", "binary", "host"]
#: Beat latency buckets in seconds (a beat is one UPDATE plus one driver call).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Bound on reading one scrape request and writing its answer.
REQUEST_TIMEOUT = 5.0
MAX_REQUEST = 8192


def _labels(hb: Heartbeat) -> list[str]:
    return [hb.member.topic, hb.member.binary, hb.member.host]


class _Stats(Collector):
    """Reads ``hb.stats`` of every tracked heartbeat at scrape time."""

    def __init__(self, heartbeats: dict[ServiceKey, Heartbeat]) -> None:
        self.heartbeats = heartbeats

    def collect(self) -> Iterator[Metric]:
        beats = CounterMetricFamily("sg_agent_beats", "Successful beats (store and driver)", labels=LABELS)
        failures = CounterMetricFamily(
            "sg_agent_beat_failures", "Beats in which the store or the driver failed", labels=LABELS
        )
        rejoins = CounterMetricFamily(
            "sg_agent_rejoins", "Records or driver members re-created after a loss", labels=LABELS
        )
        age = GaugeMetricFamily(
            "sg_agent_last_success_age_seconds", "Seconds since the last successful beat", labels=LABELS
        )
        skew = GaugeMetricFamily(
            "sg_agent_store_clock_skew_seconds",
            "Store clock minus this host's clock at the last beat",
            labels=LABELS,
        )
        for hb in list(self.heartbeats.values()):
            labels, stats = _labels(hb), hb.stats
            beats.add_metric(labels, stats.beats)
            failures.add_metric(labels, stats.failures)
            rejoins.add_metric(labels, stats.rejoins)
            last = stats.last_success_age()
            if last is not None:
                age.add_metric(labels, last)
            if stats.clock_skew is not None:
                skew.add_metric(labels, stats.clock_skew)
        yield from (beats, failures, rejoins, age, skew)


class AgentMetrics:
    """The agent's registry; pass :meth:`observe` as each heartbeat's observer."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.heartbeats: dict[ServiceKey, Heartbeat] = {}
        self.latency = Histogram(
            "sg_agent_beat_duration_seconds",
            "Time one beat took (store and driver concurrently), failed beats included",
            LABELS,
            registry=self.registry,
            buckets=BUCKETS,
        )
        self.registry.register(_Stats(self.heartbeats))

    def track(self, hb: Heartbeat) -> None:
        """Export ``hb``'s counters even before its first beat."""
        self.heartbeats.setdefault(hb.key, hb)

    def forget(self, key: ServiceKey) -> None:
        """Drop every series of a service the agent no longer runs: its counters and its
        latency histogram (which would otherwise stay until the agent restarts)."""
        hb = self.heartbeats.pop(key, None)
        if hb is not None:
            with contextlib.suppress(KeyError):  # it never beat: no histogram series
                self.latency.remove(*_labels(hb))

    def observe(self, hb: Heartbeat, ok: bool) -> None:
        """The heartbeat observer: record the beat's latency."""
        self.track(hb)
        if hb.stats.last_latency is not None:
            self.latency.labels(*_labels(hb)).observe(hb.stats.last_latency)

    def render(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)

    async def serve(
        self, listen: str, *, task_status: TaskStatus[int | None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve ``GET /metrics`` on ``listen`` until cancelled.

        Reports the bound port as started, or ``None`` when it cannot bind: the
        metrics are then off, logged as an error, and the beats go on.
        """
        host, port = parse_listen(listen, "metrics_listen")
        try:
            listener = await anyio.create_tcp_listener(local_host=host, local_port=port, reuse_port=False)
        except OSError as exc:
            log.error("metrics_listen_failed", listen=listen, error=str(exc))
            task_status.started(None)
            return
        log.info("metrics_listening", listen=listen)
        task_status.started(port)
        async with listener:
            await listener.serve(self._handle)

    async def _handle(self, stream: SocketStream) -> None:
        async with stream:
            try:
                with anyio.fail_after(REQUEST_TIMEOUT):
                    request = b""
                    while b"\r\n\r\n" not in request and len(request) < MAX_REQUEST:
                        request += await stream.receive(4096)
                    parts = request.split(b"\r\n", 1)[0].split()
                    path = parts[1].split(b"?", 1)[0] if len(parts) >= 2 else b""
                    if parts[:1] == [b"GET"] and path == b"/metrics":
                        status, ctype, body = b"200 OK", CONTENT_TYPE_LATEST.encode(), self.render()
                    else:
                        status, ctype, body = b"404 Not Found", b"text/plain", b"only GET /metrics here\n"
                    head = (
                        b"HTTP/1.1 " + status + b"\r\nContent-Type: " + ctype
                        + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
                    )  # fmt: skip
                    await stream.send(head + body)
            except (TimeoutError, anyio.EndOfStream, anyio.BrokenResourceError, OSError) as exc:
                log.debug("metrics_request_failed", error=type(exc).__name__)
            except Exception:
                # A bug in rendering must cost one scrape, never the agent's beats.
                log.exception("metrics_request_crashed")
