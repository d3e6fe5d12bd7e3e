"""The heartbeat loop, shared by ``sg-agent`` and embedded use (``group.join``).

Each beat stamps the store record and refreshes the driver member, concurrently,
each step under one deadline kept by :class:`~sg.backends.Backends`. A failure
of either is logged once per outage (then at 2, 4, 8, ... failures) and the loop
goes on: a backend fault never ends it. A record deleted under a live service,
or a member the driver lost, is re-created and counted as a re-join. On exit the
service leaves, shielded and bounded, so a clean stop reads ``down`` at once.

A *gate* (the agent's local health check) may hold a service down: before each
beat the gate is asked; while it returns a failure reason the heartbeat does not
beat, records the reason in the store (the verdict reads ``check_failed``) and
removes the driver member. The first beat after the gate passes again clears it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskStatus

from sg.backends import Backends
from sg.drivers.db import DBDriver
from sg.errors import BackendUnavailable
from sg.lazylog import get_logger
from sg.model import Member, ServiceKey
from sg.store.base import BeatResult

__all__ = ["BeatObserver", "Gate", "Heartbeat", "HeartbeatStats"]

log = get_logger("sg.heartbeat")

#: Fraction of the interval taken off at random, so a fleet's beats spread out.
JITTER = 0.1
#: The longest gap, in failures, between two ``beat_failed`` logs of one outage: the
#: log backoff doubles up to here and no further (capped in the exponent, so a long
#: outage still logs now and then and the gap never grows without bound).
MAX_LOG_GAP = 1024


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


#: Called after every beat with the heartbeat and whether the beat succeeded (not for
#: rounds in which a failing gate held the service down: no beat happened; read
#: ``hb.check_failure`` for those).
BeatObserver = Callable[["Heartbeat", bool], Awaitable[None] | None]

#: Asked before every beat: ``None`` when the service is healthy, else why it is not.
#: It must bound its own run time (the agent's checks do, with ``check_timeout``).
Gate = Callable[[], Awaitable[str | None]]


class Heartbeat:
    """Keeps one :class:`~sg.model.Member` alive through a :class:`~sg.backends.Backends`.

    ``interval`` is this heartbeat's report interval; ``None`` follows the
    ``report_interval`` of the backends' timings (and so a reload of it).
    """

    def __init__(
        self,
        backends: Backends,
        member: Member,
        *,
        interval: float | None = None,
        leave_timeout: float = 0.8,
        observer: BeatObserver | None = None,
        gate: Gate | None = None,
    ) -> None:
        self.backends = backends
        self.member = member
        self._interval = None if interval is None else backends.timings.check_interval(interval)
        self.leave_timeout = leave_timeout
        self.observer = observer
        self.gate = gate
        self.stats = HeartbeatStats()
        #: Set after the first beat in which both the store and the driver succeeded.
        self.ready = anyio.Event()
        #: Why the gate last failed, while it fails; ``None`` while it passes.
        self.check_failure: str | None = None
        #: Monotonic time of the last good round: a successful beat, or (while the gate
        #: fails) the failure recorded in the store and the driver member removed.
        self.last_good: float | None = None
        #: Whether the last round was good; ``None`` before the first one.
        self.last_round_ok: bool | None = None
        #: The scope of the sleep between two rounds (``None`` while a round runs), and
        #: whether :meth:`poke` asked for the next round now.
        self._nap: anyio.CancelScope | None = None
        self._poked = False
        self._driver_cleared = False
        self._registered = False
        self._joined = False
        self._skewed = False
        self._log = log.bind(host=member.host, binary=member.binary, topic=member.topic)

    @property
    def key(self) -> ServiceKey:
        """The service identity."""
        return self.member.key

    @property
    def report_interval(self) -> float:
        """Seconds between two rounds."""
        return self.backends.timings.report_interval if self._interval is None else self._interval

    def poke(self) -> None:
        """Start the next round now instead of at the end of the interval."""
        self._poked = True
        if self._nap is not None:
            self._nap.cancel()

    def set_report_interval(self, interval: float | None) -> None:
        """Beat every ``interval`` seconds from now on (``None``: the timings' default);
        the next round starts at once."""
        self._interval = None if interval is None else self.backends.timings.check_interval(interval)
        self.poke()

    async def run(self, *, task_status: TaskStatus[Heartbeat] = anyio.TASK_STATUS_IGNORED) -> None:
        """Beat until cancelled; then leave. Reports started after the first beat attempt."""
        try:
            started = False
            while True:
                began = time.monotonic()
                await self.round_once()
                if self.backends.batches_beats:
                    # A batch's beats end together: counting the interval from the batch's
                    # start (its end less the window its leader waited) keeps one host's
                    # services in one batch round after round; counted from each one's own
                    # start, their phases would drift apart.
                    began = time.monotonic() - self.backends.beat_batch_window
                if not started:
                    task_status.started(self)
                    started = True
                delay = self.report_interval * (1 - JITTER * random.random())  # noqa: S311
                if not self._poked:
                    # A plain sleep, cancelled only by a poke: the timeout around an event
                    # it replaces delivered a cancellation every round (issue 12).
                    try:
                        with anyio.CancelScope() as self._nap:
                            await anyio.sleep(max(0.0, began + delay - time.monotonic()))
                    finally:
                        self._nap = None
                self._poked = False
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(self.leave_timeout) as scope:
                await self.leave()
            if scope.cancelled_caught:
                self._log.warning("leave_timed_out", timeout=self.leave_timeout)

    async def round_once(self) -> bool:
        """Ask the gate, then beat (healthy) or hold the service down (not).

        Returns whether the round was good: the beat succeeded, or the check failure
        was recorded and the driver member removed.
        """
        failure = await self._ask_gate()
        if failure is None:
            if self.check_failure is not None:
                self._log.info("check_passed", previous=self.check_failure)
                self.check_failure = None
            ok = await self.beat_once()
        else:
            if failure != self.check_failure:
                self._log.warning("check_failed", reason=failure)
                self.check_failure = failure
            ok = await self.hold(failure)
        self.last_round_ok = ok
        return ok

    async def _ask_gate(self) -> str | None:
        if self.gate is None:
            return None
        try:
            return await self.gate()
        except Exception as exc:
            # A bug in a check must read as a failed check, not end the beat loop.
            self._log.exception("check_crashed")
            return f"check crashed: {type(exc).__name__}: {exc}"

    async def hold(self, reason: str) -> bool:
        """Keep the service down: store ``reason`` on the record and remove the driver
        member, concurrently. Returns whether both succeeded."""
        results: dict[str, bool] = {}
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._guarded, "store", self._hold_store, results)
            if not self._driver_cleared:
                tg.start_soon(self._guarded, "driver", self._hold_driver, results)
        ok = all(results.values())
        if ok:
            self.last_good = time.monotonic()
        return ok

    async def _hold_store(self) -> None:
        store = self.backends.store
        reason = self.check_failure or "check failed"
        if not self._registered:
            await store.register(self.member, driver=self.backends.driver.name)
            self._registered = True
        if not await store.set_check_failure(self.key, reason):
            # Deleted under us: re-create it, so the reason has a record to be read from.
            await store.register(self.member, driver=self.backends.driver.name)
            await store.set_check_failure(self.key, reason)

    async def _hold_driver(self) -> None:
        # Leave once per hold; a member left by a previous run of the agent goes too.
        await self.backends.driver.leave(self.member)
        self._joined = False
        self._driver_cleared = True

    async def beat_once(self) -> bool:
        """One beat: store and driver concurrently. Returns whether both succeeded."""
        began = time.monotonic()
        results: dict[str, bool] = {}
        if type(self.backends.driver) is DBDriver:
            # The db driver holds nothing (its join and refresh do no I/O and cannot fail):
            # no child task and no deadline for a step that never waits (issue 12: with
            # the status lines, a third of an agent's CPU per beat went to them).
            self._joined = True
            self._driver_cleared = False
            self._recovered("driver")  # an outage of the driver before a reload to db ends
            results["driver"] = True
            await self._guarded("store", self._beat_store, results)
        else:
            # The driver's step in a child task, the store's in this one: concurrent as
            # ever, one task spawned per beat instead of two.
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._guarded, "driver", self._beat_driver, results)
                await self._guarded("store", self._beat_store, results)
        ok = all(results.values())
        self.stats.last_latency = time.monotonic() - began
        if ok:
            self.stats.beats += 1
            self.stats.last_success = self.last_good = time.monotonic()
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
        self, backend: str, step: Callable[[], Awaitable[None]], results: dict[str, bool]
    ) -> None:
        """Run one step (possibly several calls to one backend) under one deadline (the
        store's beat keeps its own: see :meth:`_beat_store`)."""
        timings = self.backends.timings
        try:
            if step == self._beat_store:
                await step()  # keeps its own deadline (one a batch when batched)
            elif backend == "store":
                bound = timings.beat_timeout(timings.store_timeout)
                await self.backends.store_call("beat", step(), timeout=bound)
            else:
                bound = timings.beat_timeout(timings.driver_timeout)
                await self.backends.driver_call("beat", step(), timeout=bound)
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
            outage.next_log += min(outage.next_log, MAX_LOG_GAP)

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
        """The store's step of a beat, within one bound (``beat_timeout``). A beat of a
        registered record is bounded by :meth:`Backends.beat` itself (when batched, one
        deadline a batch, kept by its leader); the rare rest (the first beat, a record
        deleted under us) under a :meth:`Backends.store_call`."""
        backends = self.backends
        timings = backends.timings
        bound = timings.beat_timeout(timings.store_timeout)
        stamped: BeatResult
        if self._registered:
            began = time.monotonic()
            before = time.time()
            result = await backends.beat(self.key, timeout=bound)  # with the host's others, if batched
            if result is None:
                left = max(0.0, began + bound - time.monotonic())
                stamped = await backends.store_call("beat", self._store_rejoin(), timeout=left)
            else:
                stamped = result
        else:
            before, stamped = await backends.store_call("beat", self._store_join(), timeout=bound)
        local = (before + time.time()) / 2
        self._check_skew(stamped.store_time - local)

    async def _store_join(self) -> tuple[float, BeatResult]:
        """Register, then beat; with the wall time the beat began (for the skew)."""
        store = self.backends.store
        await store.register(self.member, driver=self.backends.driver.name)
        self._registered = True
        before = time.time()
        result = await self.backends.beat(self.key)  # under the caller's store_call
        return before, (await self._store_rejoin() if result is None else result)

    async def _store_rejoin(self) -> BeatResult:
        # The record was deleted under a live service: put it back.
        store = self.backends.store
        await store.register(self.member, driver=self.backends.driver.name)
        result = await store.beat(self.key)
        self._rejoined("store", "record missing")
        if result is None:
            raise BackendUnavailable(store.name, "record vanished again right after re-creating it")
        return result

    async def _beat_driver(self) -> None:
        driver = self.backends.driver
        if not self._joined:
            await driver.join(self.member)
            self._joined = True
            self._driver_cleared = False
            return
        if await driver.refresh(self.member):
            self._rejoined(driver.name, "member missing")

    def _rejoined(self, backend: str, why: str) -> None:
        self.stats.rejoins += 1
        self._log.warning("service_rejoined", backend=backend, why=why, rejoins=self.stats.rejoins)

    def _check_skew(self, skew: float) -> None:
        self.stats.clock_skew = skew
        limit = self.backends.timings.max_clock_skew
        if abs(skew) > limit and not self._skewed:
            self._skewed = True
            self._log.warning("clock_skew", skew_s=round(skew, 3), limit_s=limit)
        elif abs(skew) <= limit and self._skewed:
            self._skewed = False
            self._log.info("clock_skew_resolved", skew_s=round(skew, 3), limit_s=limit)

    async def switch_driver(self) -> None:
        """Hold the member in the backends' (new) driver, then record that driver on the
        record, in that order, so a reader never judges the record by a driver that lacks
        the member; the caller may then remove it from the old driver. Raises
        :class:`~sg.errors.BackendUnavailable` if either step fails (the next beat
        retries both)."""
        driver = self.backends.driver
        self._registered = False
        if self.check_failure is None:
            self._joined = False
            await self.backends.driver_call("join", driver.join(self.member))
            self._joined = True
            self._driver_cleared = False
        store = self.backends.store
        await self.backends.store_call("register", store.register(self.member, driver=driver.name))
        self._registered = True

    async def leave(self) -> None:
        """Leave the group now: mark the record left and remove the driver member."""
        try:
            await self.backends.leave(self.member)
        except BackendUnavailable as exc:
            self._log.warning("leave_failed", error=str(exc))
        else:
            self._log.info("service_left")
        self._registered = False
        self._joined = False
