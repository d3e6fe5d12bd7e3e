"""The heartbeat loop, shared by ``sg-agent`` and embedded use (``group.join``).

Each beat stamps the store record and refreshes the driver member, concurrently
and each under its own deadline. A failure of either is logged once per outage
(then at 2, 4, 8, ... failures) and the loop goes on: a backend fault never ends
it. A record deleted under a live service, or a member the driver lost, is
re-created and counted as a re-join. On exit the service leaves, shielded and
bounded, so a clean stop reads ``down`` at once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
import structlog
from anyio.abc import TaskStatus

from sg.config import ServiceSpec
from sg.errors import BackendUnavailable
from sg.model import Service, ServiceKey

if TYPE_CHECKING:
    from sg.group import ServiceGroup

__all__ = ["BeatObserver", "Heartbeat", "HeartbeatStats"]

log = structlog.get_logger("sg.heartbeat")

#: Fraction of the interval taken off at random, so a fleet's beats spread out.
JITTER = 0.1


@dataclass
class _Outage:
    """Failure bookkeeping for one backend, to log once per outage with backoff."""

    failures: int = 0
    started: float = 0.0
    next_log: int = 1


@dataclass
class HeartbeatStats:
    """Counters for one service's heartbeat (read by the agent's metrics)."""

    beats: int = 0
    failures: int = 0
    rejoins: int = 0
    last_success: float | None = None
    last_latency: float | None = None
    clock_skew: float | None = None
    last_error: str | None = None
    outages: dict[str, _Outage] = field(default_factory=dict)

    def last_success_age(self) -> float | None:
        """Seconds since the last successful beat (monotonic), or ``None``."""
        return None if self.last_success is None else time.monotonic() - self.last_success


#: Called after every beat with the heartbeat and whether the beat succeeded.
BeatObserver = Callable[["Heartbeat", bool], Awaitable[None] | None]


class Heartbeat:
    """Keeps one service alive in a :class:`~sg.group.ServiceGroup`."""

    def __init__(
        self,
        group: ServiceGroup,
        spec: ServiceSpec,
        *,
        report_interval: float | None = None,
        leave_timeout: float = 0.8,
        observer: BeatObserver | None = None,
    ) -> None:
        self.group = group
        self.spec = spec
        self.report_interval = report_interval or group.report_interval
        self.leave_timeout = leave_timeout
        self.observer = observer
        self.stats = HeartbeatStats()
        #: Set after the first beat in which both the store and the driver succeeded.
        self.ready = anyio.Event()
        self.member = Service(host=spec.host, binary=spec.binary, topic=spec.topic, version=spec.version)
        self._registered = False
        self._joined = False
        self._skewed = False
        self._log = log.bind(host=spec.host, binary=spec.binary, topic=spec.topic)

    @property
    def key(self) -> ServiceKey:
        """The service identity."""
        return self.member.key

    def _timeout(self, backend_timeout: float) -> float:
        # A beat slower than half the down time is as good as lost.
        return min(backend_timeout, self.group.service_down_time / 2)

    async def run(self, *, task_status: TaskStatus[Heartbeat] = anyio.TASK_STATUS_IGNORED) -> None:
        """Beat until cancelled; then leave. Reports started after the first beat attempt."""
        try:
            started = False
            while True:
                began = time.monotonic()
                await self.beat_once()
                if not started:
                    task_status.started(self)
                    started = True
                delay = self.report_interval * (1 - JITTER * random.random())  # noqa: S311
                await anyio.sleep(max(0.0, began + delay - time.monotonic()))
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(self.leave_timeout) as scope:
                await self.leave()
            if scope.cancelled_caught:
                self._log.warning("leave_timed_out", timeout=self.leave_timeout)

    async def beat_once(self) -> bool:
        """One beat: store and driver concurrently. Returns whether both succeeded."""
        began = time.monotonic()
        results: dict[str, bool] = {}
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._guarded, "store", self.group.store_timeout, self._beat_store, results)
            tg.start_soon(self._guarded, "driver", self.group.driver_timeout, self._beat_driver, results)
        ok = all(results.values())
        self.stats.last_latency = time.monotonic() - began
        if ok:
            self.stats.beats += 1
            self.stats.last_success = time.monotonic()
            self.stats.last_error = None
            self.ready.set()
        else:
            self.stats.failures += 1
        if self.observer is not None:
            maybe = self.observer(self, ok)
            if maybe is not None:
                await maybe
        return ok

    async def _guarded(
        self, backend: str, timeout: float, step: Callable[[], Awaitable[None]], results: dict[str, bool]
    ) -> None:
        try:
            with anyio.fail_after(self._timeout(timeout)):
                await step()
        except TimeoutError:
            self._failed(backend, f"no answer within {self._timeout(timeout):g}s")
            results[backend] = False
        except BackendUnavailable as exc:
            self._failed(backend, str(exc))
            results[backend] = False
        except Exception as exc:
            # Not a backend fault but a bug; the beat loop must still outlive it.
            self._log.exception("beat_crashed", backend=backend)
            self._failed(backend, f"{type(exc).__name__}: {exc}")
            results[backend] = False
        else:
            self._recovered(backend)
            results[backend] = True

    def _failed(self, backend: str, error: str) -> None:
        self.stats.last_error = f"{backend}: {error}"
        outage = self.stats.outages.setdefault(backend, _Outage(started=time.monotonic()))
        outage.failures += 1
        if outage.failures >= outage.next_log:
            self._log.warning(
                "beat_failed",
                backend=backend,
                error=error,
                failures=outage.failures,
                outage_s=round(time.monotonic() - outage.started, 3),
            )
            outage.next_log *= 2

    def _recovered(self, backend: str) -> None:
        outage = self.stats.outages.pop(backend, None)
        if outage is not None:
            self._log.info(
                "beat_recovered",
                backend=backend,
                failures=outage.failures,
                outage_s=round(time.monotonic() - outage.started, 3),
            )

    async def _beat_store(self) -> None:
        store = self.group.store
        if not self._registered:
            await store.register(self.spec.host, self.spec.binary, self.spec.topic, self.spec.version)
            self._registered = True
        before = time.time()
        result = await store.beat(self.key)
        if result is None:
            # The record was deleted under a live service: put it back.
            await store.register(self.spec.host, self.spec.binary, self.spec.topic, self.spec.version)
            result = await store.beat(self.key)
            self._rejoined("store", "record missing")
            if result is None:
                raise BackendUnavailable(store.name, "record vanished again right after re-creating it")
        local = (before + time.time()) / 2
        self._check_skew(result.store_time - local)

    async def _beat_driver(self) -> None:
        driver = self.group.driver
        if not self._joined:
            await driver.join(self.member)
            self._joined = True
            return
        if await driver.refresh(self.member):
            self._rejoined(driver.name, "member missing")

    def _rejoined(self, backend: str, why: str) -> None:
        self.stats.rejoins += 1
        self._log.warning("service_rejoined", backend=backend, why=why, rejoins=self.stats.rejoins)

    def _check_skew(self, skew: float) -> None:
        self.stats.clock_skew = skew
        limit = self.group.max_clock_skew
        if abs(skew) > limit and not self._skewed:
            self._skewed = True
            self._log.warning("clock_skew", skew_s=round(skew, 3), limit_s=limit)
        elif abs(skew) <= limit and self._skewed:
            self._skewed = False
            self._log.info("clock_skew_resolved", skew_s=round(skew, 3), limit_s=limit)

    async def leave(self) -> None:
        """Leave the group now: mark the record left and remove the driver member."""
        try:
            await self.group.leave(self.member)
        except (BackendUnavailable, TimeoutError) as exc:
            self._log.warning("leave_failed", error=str(exc))
        else:
            self._log.info("service_left")
        self._registered = False
        self._joined = False
