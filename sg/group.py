"""ServiceGroup: the library's front door.

A group pairs a :class:`~sg.store.base.Store` (the records) with a
:class:`~sg.drivers.base.Driver` (the second liveness signal). A service is up
only when its record is fresh *and* the driver still holds it; both checks run
concurrently, each under its own deadline.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self

import anyio
import structlog

from sg.backends import load_backend_class
from sg.config import MIN_DOWN_TIME_FACTOR, ServiceSpec, Settings
from sg.drivers.base import Driver, DriverOptions, Membership, open_driver
from sg.errors import BackendTimeout, BackendUnavailable, ConfigError, NotFound, Refused
from sg.heartbeat import BeatObserver, Gate, Heartbeat
from sg.model import Service, ServiceEvent, ServiceKey, ServiceStatus, Verdict
from sg.store.base import Store
from sg.timings import Timings
from sg.verdict import judge, store_unreachable
from sg.watch import watch as _watch

__all__ = ["ServiceGroup"]

log = structlog.get_logger("sg.group")

#: How long ``leave`` lets the driver wait for the store's ``left`` mark (seconds).
LEAVE_ORDER_GRACE = 0.2


class ServiceGroup:
    """Liveness of services: records in a store plus membership in a driver.

    Use as an async context manager::

        async with ServiceGroup.from_urls("sqlite:///tmp/sg.db") as group:
            async with group.join("sg-worker", "workers"):
                ...
    """

    def __init__(
        self,
        store: Store,
        driver: Driver,
        *,
        report_interval: float = 10.0,
        service_down_time: float = 60.0,
        store_timeout: float = 5.0,
        driver_timeout: float = 5.0,
        max_clock_skew: float = 2.0,
    ) -> None:
        if service_down_time < MIN_DOWN_TIME_FACTOR * report_interval:
            raise ConfigError(
                f"service_down_time ({service_down_time:g}s) must be at least "
                f"{MIN_DOWN_TIME_FACTOR:g} x report_interval ({report_interval:g}s)"
            )
        self.store = store
        self.driver = driver
        self.report_interval = report_interval
        self.service_down_time = service_down_time
        self.store_timeout = store_timeout
        self.driver_timeout = driver_timeout
        self.max_clock_skew = max_clock_skew

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceGroup:
        """Build the store and driver named by ``settings`` (not yet opened)."""
        timings = Timings(
            report_interval=settings.report_interval,
            service_down_time=settings.service_down_time,
            store_timeout=settings.store_timeout,
            driver_timeout=settings.driver_timeout,
            max_clock_skew=settings.max_clock_skew,
        )
        store: Store = load_backend_class("sg.stores", settings.store, "store").from_url(
            settings.store, timings
        )
        driver = open_driver(
            settings.driver,
            DriverOptions(
                report_interval=settings.report_interval,
                service_down_time=settings.service_down_time,
                timeout=settings.driver_timeout,
            ),
        )
        return cls(
            store,
            driver,
            report_interval=settings.report_interval,
            service_down_time=settings.service_down_time,
            store_timeout=settings.store_timeout,
            driver_timeout=settings.driver_timeout,
            max_clock_skew=settings.max_clock_skew,
        )

    @classmethod
    def from_urls(cls, store: str | None = None, driver: str | None = None, **settings: Any) -> ServiceGroup:
        """Build from URLs and keyword settings (``report_interval=...`` etc.)."""
        base = Settings(**settings)
        values = {"store": store or base.store, "driver": driver or base.driver}
        return cls.from_settings(Settings(**{**settings, **values}))

    async def __aenter__(self) -> Self:
        """Connect both backends. A backend that is down now is logged, not fatal:
        backends reconnect on use, so an agent can start before its database.

        A backend that refuses the configuration (say a schema newer than this release)
        raises :class:`ConfigError` itself, not wrapped in an exception group.
        """
        refused: list[ConfigError] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._open_one, self.store, self.store_timeout, refused)
            tg.start_soon(self._open_one, self.driver, self.driver_timeout, refused)
        if refused:
            await self.aclose()
            raise refused[0]
        return self

    async def _open_one(self, backend: Store | Driver, timeout: float, refused: list[ConfigError]) -> None:
        try:
            with anyio.fail_after(timeout):
                await backend.open()
        except (BackendUnavailable, TimeoutError) as exc:
            log.warning("backend_unavailable_at_start", backend=backend.name, error=str(exc))
        except ConfigError as exc:
            refused.append(exc)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close both backends, shielded and bounded."""
        await self.aclose()

    async def aclose(self) -> None:
        """Close the store and the driver."""
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._close_one, self.driver, self.driver_timeout)
                tg.start_soon(self._close_one, self.store, self.store_timeout)

    async def _close_one(self, backend: Store | Driver, timeout: float) -> None:
        with anyio.move_on_after(timeout) as scope:
            try:
                await backend.close()
            except (BackendUnavailable, OSError) as exc:
                log.warning("backend_close_failed", backend=backend.name, error=str(exc))
        if scope.cancelled_caught:
            log.warning("backend_close_timed_out", backend=backend.name, timeout=timeout)

    def __repr__(self) -> str:
        return f"ServiceGroup(store={self.store.name}, driver={self.driver.name})"

    # -- reading ---------------------------------------------------------------------------

    async def _store_call(self, what: str, call: Any) -> Any:
        try:
            with anyio.fail_after(self.store_timeout):
                return await call
        except TimeoutError as exc:
            raise BackendTimeout(
                self.store.name, f"{what}: no answer within {self.store_timeout:g}s"
            ) from exc

    async def _membership(self, services: Sequence[Service]) -> tuple[Membership, str | None]:
        """Ask the driver, under its deadline; on failure return the error instead."""
        if not services:
            return {}, None
        try:
            with anyio.fail_after(self.driver_timeout):
                return await self.driver.members(services), None
        except TimeoutError:
            return {}, f"{self.driver.name}: no answer within {self.driver_timeout:g}s"
        except BackendUnavailable as exc:
            return {}, str(exc)

    def _judge(self, service: Service, membership: Membership, driver_error: str | None) -> Verdict:
        return judge(
            service,
            service_down_time=self.service_down_time,
            driver_seen=membership.get(service.key),
            driver_error=driver_error,
        )

    async def verdict(self, service: Service) -> Verdict:
        """Re-read the record and ask the driver, concurrently, and judge.

        An unreachable store or driver gives ``unknown``, never ``up``. Raises
        :class:`~sg.errors.NotFound` if the record no longer exists.
        """
        record: list[Service | None] = []
        store_error: list[str] = []
        driver_answer: list[tuple[Membership, str | None]] = []

        async def read_store() -> None:
            try:
                record.append(await self._store_call("get", self.store.get(service.key)))
            except BackendUnavailable as exc:
                store_error.append(str(exc))

        async def ask_driver() -> None:
            driver_answer.append(await self._membership([service]))

        async with anyio.create_task_group() as tg:
            tg.start_soon(read_store)
            tg.start_soon(ask_driver)
        if store_error:
            return store_unreachable(store_error[0])
        current = record[0]
        if current is None:
            raise NotFound(f"no service host={service.host!r} binary={service.binary!r}")
        membership, driver_error = driver_answer[0]
        return self._judge(current, membership, driver_error)

    async def is_up(self, service: Service) -> bool:
        """``verdict(service).state == "up"``."""
        return (await self.verdict(service)).state == "up"

    async def get(self, host: str, binary: str) -> ServiceStatus:
        """The record of ``(host, binary)`` with its verdict; :class:`NotFound` if absent."""
        key = ServiceKey.of(host, binary)
        service = await self._store_call("get", self.store.get(key))
        if service is None:
            raise NotFound(f"no service host={host!r} binary={binary!r}")
        membership, driver_error = await self._membership([service])
        return ServiceStatus(service, self._judge(service, membership, driver_error))

    async def get_by_uuid(self, uuid: str) -> ServiceStatus:
        """The record with ``uuid`` and its verdict; :class:`NotFound` if absent."""
        service = await self._store_call("get", self.store.get_by_uuid(uuid))
        if service is None:
            raise NotFound(f"no service uuid={uuid!r}")
        membership, driver_error = await self._membership([service])
        return ServiceStatus(service, self._judge(service, membership, driver_error))

    async def list(
        self, *, topic: str | None = None, binary: str | None = None, host: str | None = None
    ) -> list[ServiceStatus]:
        """Every matching service with its verdict, in O(1) round trips: one query,
        then one batch membership call to the driver."""
        services = await self._store_call("list", self.store.list(topic=topic, binary=binary, host=host))
        membership, driver_error = await self._membership(services)
        return [ServiceStatus(s, self._judge(s, membership, driver_error)) for s in services]

    async def min_version(self, binary: str, *, only_up: bool = False) -> int | None:
        """``MIN(version)`` of ``binary``; with ``only_up``, over the services whose verdict is
        up (both signals: one query, then one batch membership call to the driver).

        Raises :class:`~sg.errors.BackendUnavailable` when the driver cannot say which are up.
        """
        if not only_up:
            return await self._store_call("min_version", self.store.min_version(binary))  # type: ignore[no-any-return]
        services = await self._store_call("list", self.store.list(binary=binary))
        membership, driver_error = await self._membership(services)
        verdicts = [(s, self._judge(s, membership, driver_error)) for s in services]
        if driver_error is not None and any(v.state == "unknown" for _, v in verdicts):
            # None would read as "no live service": an upgrade gate must not pass on it.
            raise BackendUnavailable(self.driver.name, f"min_version: {driver_error}")
        return min((s.version for s, v in verdicts if v.is_up), default=None)

    async def ping(self) -> dict[str, str | None]:
        """Check both backends concurrently, each under its deadline (for health checks).

        Returns ``{"store": error, "driver": error}`` where ``error`` is ``None`` when
        the backend answered. The store is pinged; the Driver protocol has no ping, so
        the driver is asked for one sentinel member: one round trip, and an answer of
        ``None`` means unreachable.
        """
        errors: dict[str, str | None] = {}

        async def store() -> None:
            try:
                await self._store_call("ping", self.store.ping())
                errors["store"] = None
            except BackendUnavailable as exc:
                errors["store"] = str(exc)

        async def driver() -> None:
            sentinel = Service(host="sg-ping", binary="sg-ping", topic="sg-ping")
            try:
                with anyio.fail_after(self.driver_timeout):
                    answer = await self.driver.members([sentinel])
            except TimeoutError:
                errors["driver"] = f"{self.driver.name}: no answer within {self.driver_timeout:g}s"
                return
            except BackendUnavailable as exc:
                errors["driver"] = str(exc)
                return
            reachable = answer.get(sentinel.key) is not None
            errors["driver"] = None if reachable else f"{self.driver.name}: server unreachable"

        async with anyio.create_task_group() as tg:
            tg.start_soon(store)
            tg.start_soon(driver)
        return errors

    # -- changing ---------------------------------------------------------------------------

    async def _service(self, service: Service | ServiceKey) -> Service:
        if isinstance(service, Service):
            return service
        found = await self._store_call("get", self.store.get(service))
        if found is None:
            raise NotFound(f"no service host={service.host!r} binary={service.binary!r}")
        return found  # type: ignore[no-any-return]

    async def set_disabled(
        self, service: Service | ServiceKey, disabled: bool, reason: str | None = None
    ) -> Service:
        """Enable or disable a service (its ``updated_at`` is never touched)."""
        key = service.key if isinstance(service, Service) else service
        return await self._store_call(  # type: ignore[no-any-return]
            "set_disabled", self.store.set_disabled(key, disabled, reason)
        )

    async def set_forced_down(self, service: Service | ServiceKey, forced_down: bool) -> Service:
        """Force a service down (or clear it); ``updated_at`` is never touched."""
        key = service.key if isinstance(service, Service) else service
        return await self._store_call(  # type: ignore[no-any-return]
            "set_forced_down", self.store.set_forced_down(key, forced_down)
        )

    async def leave(self, service: Service | ServiceKey) -> None:
        """Mark the record ``left`` and remove the driver member now.

        The service reads ``down`` (reason ``left``) until its next heartbeat. The
        member is removed once the record is marked, so readers see ``left`` rather
        than a passing ``not_joined`` (which looks like a crash), but never later than
        :data:`LEAVE_ORDER_GRACE` after the start: a slow store must not keep a
        stopped service's member alive.
        """
        target = await self._service(service)
        errors: list[BaseException] = []
        marked = anyio.Event()

        async def from_driver() -> None:
            with anyio.move_on_after(LEAVE_ORDER_GRACE):
                await marked.wait()
            try:
                with anyio.fail_after(self.driver_timeout):
                    await self.driver.leave(target)
            except TimeoutError as exc:
                errors.append(
                    BackendTimeout(self.driver.name, f"leave: no answer within {self.driver_timeout:g}s")
                )
                errors[-1].__cause__ = exc
            except BackendUnavailable as exc:
                errors.append(exc)

        async def in_store() -> None:
            try:
                await self._store_call("mark_left", self.store.mark_left(target.key))
            except BackendUnavailable as exc:
                errors.append(exc)
            finally:
                marked.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(from_driver)
            tg.start_soon(in_store)
        if errors:
            raise errors[0]

    async def delete(self, service: Service | ServiceKey, *, force: bool = False) -> None:
        """Remove the record and the driver member.

        Refuses (:class:`~sg.errors.Refused`) a service that is ``up`` or ``unknown``
        unless ``force``: deleting a live service makes it re-register on its next beat.
        """
        target = await self._service(service)
        verdict = await self.verdict(target)
        if verdict.state != "down" and not force:
            raise Refused(
                f"service host={target.host!r} binary={target.binary!r} is {verdict.state} "
                f"({verdict.reason}); stop it first or use force"
            )
        try:
            with anyio.fail_after(self.driver_timeout):
                await self.driver.leave(target)
        except (BackendUnavailable, TimeoutError) as exc:
            if not force:
                raise Refused(
                    f"cannot remove the {self.driver.name} member ({exc}); nothing was deleted"
                ) from exc
            log.warning("delete_driver_leave_failed", host=target.host, binary=target.binary, error=str(exc))
        if not await self._store_call("delete", self.store.delete(target.key)):
            raise NotFound(f"no service host={target.host!r} binary={target.binary!r}")
        log.info("service_deleted", host=target.host, binary=target.binary, forced=force)

    # -- heartbeat ------------------------------------------------------------------------

    def heartbeat(
        self,
        spec: ServiceSpec,
        *,
        observer: BeatObserver | None = None,
        gate: Gate | None = None,
        leave_timeout: float = 0.8,
    ) -> Heartbeat:
        """A :class:`~sg.heartbeat.Heartbeat` for ``spec`` at its own report interval (else
        the group's), optionally gated by a health check; run it with ``await hb.run()``."""
        return Heartbeat(
            self,
            spec,
            report_interval=spec.interval(self.report_interval),
            observer=observer,
            gate=gate,
            leave_timeout=leave_timeout,
        )

    @asynccontextmanager
    async def join(
        self, binary: str, topic: str, *, host: str | None = None, version: int = 0
    ) -> AsyncIterator[Heartbeat]:
        """Report this process as ``(host, binary)`` in ``topic`` while the block runs.

        Returns after the first beat attempt (``hb.ready`` is set once one succeeds);
        on exit the service leaves, so it reads ``down`` at once.
        """
        spec = ServiceSpec(binary=binary, topic=topic, host=host or socket.gethostname(), version=version)
        hb = self.heartbeat(spec)
        async with anyio.create_task_group() as tg:
            await tg.start(hb.run)
            try:
                yield hb
            finally:
                tg.cancel_scope.cancel()

    def watch(
        self, *, topic: str | None = None, interval: float | None = None
    ) -> AsyncIterator[ServiceEvent]:
        """An async iterator of state changes (see :mod:`sg.watch`): one event per
        service at start, then one per transition; pushed by drivers that can."""
        return _watch(self, topic=topic, interval=interval)
