"""ServiceGroup: the library's front door.

A group pairs a :class:`~sg.store.base.Store` (the records) with a
:class:`~sg.drivers.base.Driver` (the second liveness signal), through
:class:`~sg.backends.Backends`, which owns every deadline. A service is up only
when its record is fresh *and* the driver still holds it; both checks run
concurrently, and the rules that decide live in :mod:`sg.verdict` alone.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Self

import anyio
import structlog

from sg.backends import Backends
from sg.config import Settings
from sg.drivers.base import Driver, Membership
from sg.errors import BackendUnavailable, LeaveRefused, NotFound, Refused
from sg.heartbeat import BeatObserver, Gate, Heartbeat
from sg.model import Member, Service, ServiceEvent, ServiceKey, ServiceStatus, Verdict
from sg.store.base import Store
from sg.timings import Timings
from sg.verdict import judge, store_unreachable
from sg.watch import watch as _watch

__all__ = ["ServiceGroup"]

log = structlog.get_logger("sg.group")


def _not_found(host: str, binary: str) -> NotFound:
    return NotFound(f"no service host={host!r} binary={binary!r}")


class ServiceGroup:
    """Liveness of services: records in a store plus membership in a driver.

    Use as an async context manager::

        async with ServiceGroup.from_urls("sqlite:///tmp/sg.db") as group:
            async with group.join("sg-worker", "workers"):
                ...
    """

    def __init__(self, backends: Backends) -> None:
        self.backends = backends

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceGroup:
        """Build the store and driver named by ``settings`` (not yet opened)."""
        return cls(Backends.from_urls(settings.store, settings.driver, settings.timings))

    @classmethod
    def from_urls(cls, store: str | None = None, driver: str | None = None, **timings: float) -> ServiceGroup:
        """Build from URLs (the defaults when ``None``) and timings (``report_interval=...``)."""
        defaults = Settings()
        return cls(Backends.from_urls(store or defaults.store, driver or defaults.driver, Timings(**timings)))

    @property
    def store(self) -> Store:
        """The record store."""
        return self.backends.store

    @property
    def driver(self) -> Driver:
        """The liveness driver."""
        return self.backends.driver

    @property
    def timings(self) -> Timings:
        """The timings in force."""
        return self.backends.timings

    async def __aenter__(self) -> Self:
        """Connect both backends (see :meth:`~sg.backends.Backends.open`)."""
        await self.backends.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close both backends, shielded and bounded."""
        await self.aclose()

    async def aclose(self) -> None:
        """Close the store and the driver."""
        await self.backends.close()

    def __repr__(self) -> str:
        return f"ServiceGroup(store={self.store.name}, driver={self.driver.name})"

    # -- reading ---------------------------------------------------------------------------

    def _judge(self, service: Service, membership: Membership, driver_error: str | None) -> Verdict:
        return judge(
            service,
            service_down_time=self.timings.service_down_time,
            driver_seen=membership.get(service.key),
            driver_error=driver_error,
        )

    async def _statuses(self, services: list[Service]) -> list[ServiceStatus]:
        membership, driver_error = await self.backends.membership(services)
        return [ServiceStatus(s, self._judge(s, membership, driver_error)) for s in services]

    async def verdict(self, service: Service | Member) -> Verdict:
        """Re-read the record and ask the driver, concurrently, and judge.

        An unreachable store or driver gives ``unknown``, never ``up``. Raises
        :class:`~sg.errors.NotFound` if the record no longer exists.
        """
        record: Service | None = None
        store_error: str | None = None
        answer: tuple[Membership, str | None] = ({}, None)

        async def read_store() -> None:
            nonlocal record, store_error
            try:
                record = await self.backends.store_call("get", self.store.get(service.key))
            except BackendUnavailable as exc:
                store_error = str(exc)

        async def ask_driver() -> None:
            nonlocal answer
            answer = await self.backends.membership([service])

        async with anyio.create_task_group() as tg:
            tg.start_soon(read_store)
            tg.start_soon(ask_driver)
        if store_error is not None:
            return store_unreachable(store_error)
        if record is None:
            raise _not_found(service.host, service.binary)
        return self._judge(record, *answer)

    async def is_up(self, service: Service | Member) -> bool:
        """``verdict(service).state == "up"``."""
        return (await self.verdict(service)).state == "up"

    async def _get(self, key: ServiceKey) -> Service:
        found = await self.backends.store_call("get", self.store.get(key))
        if found is None:
            raise _not_found(key.host, key.binary)
        return found

    async def get(self, host: str, binary: str) -> ServiceStatus:
        """The record of ``(host, binary)`` with its verdict; :class:`NotFound` if absent."""
        (status,) = await self._statuses([await self._get(ServiceKey.of(host, binary))])
        return status

    async def get_by_uuid(self, uuid: str) -> ServiceStatus:
        """The record with ``uuid`` and its verdict; :class:`NotFound` if absent."""
        service = await self.backends.store_call("get", self.store.get_by_uuid(uuid))
        if service is None:
            raise NotFound(f"no service uuid={uuid!r}")
        (status,) = await self._statuses([service])
        return status

    async def list(
        self, *, topic: str | None = None, binary: str | None = None, host: str | None = None
    ) -> list[ServiceStatus]:
        """Every matching service with its verdict, in O(1) round trips: one query,
        then one batch membership call to the driver."""
        services = await self.backends.store_call(
            "list", self.store.list(topic=topic, binary=binary, host=host)
        )
        return await self._statuses(services)

    async def min_version(self, binary: str, *, only_up: bool = False) -> int | None:
        """``MIN(version)`` of ``binary``; with ``only_up``, over the services whose
        verdict is ``up`` (the same rules as :meth:`verdict`, the driver included).

        With ``only_up``, raises :class:`~sg.errors.BackendUnavailable` when a service
        is ``unknown``: its version cannot be left out, nor counted.
        """
        if not only_up:
            return await self.backends.store_call("min_version", self.store.min_version(binary))
        statuses = await self.list(binary=binary)
        unknown = [s for s in statuses if s.verdict.state == "unknown"]
        if unknown:
            # None would read as "no live service", and a low version could hide in an
            # unknown one: an upgrade gate must not pass on it.
            first = unknown[0].verdict
            raise BackendUnavailable(
                self.driver.name if first.reason.startswith("driver") else self.store.name,
                f"min_version: {len(unknown)} of {len(statuses)} services are unknown "
                f"({first.reason}: {first.detail})",
            )
        return min((s.service.version for s in statuses if s.is_up), default=None)

    async def ping(self) -> dict[str, str | None]:
        """Check both backends concurrently, each under its deadline (for health checks):
        ``{"store": error, "driver": error}``, ``None`` where the backend answered."""
        return await self.backends.ping()

    # -- changing ---------------------------------------------------------------------------

    async def set_disabled(
        self, service: Service | ServiceKey, disabled: bool, reason: str | None = None
    ) -> Service:
        """Enable or disable a service (its ``updated_at`` is never touched)."""
        key = service.key if isinstance(service, Service) else service
        return await self.backends.store_call("set_disabled", self.store.set_disabled(key, disabled, reason))

    async def set_forced_down(self, service: Service | ServiceKey, forced_down: bool) -> Service:
        """Force a service down (or clear it); ``updated_at`` is never touched."""
        key = service.key if isinstance(service, Service) else service
        return await self.backends.store_call("set_forced_down", self.store.set_forced_down(key, forced_down))

    async def update_admin(
        self,
        service: Service | ServiceKey,
        *,
        disabled: bool | None = None,
        reason: str | None = None,
        forced_down: bool | None = None,
    ) -> Service:
        """Change ``disabled`` (with ``reason``) and ``forced_down`` in one store write, so
        a failure never leaves half a change; ``None`` leaves that flag as it is."""
        key = service.key if isinstance(service, Service) else service
        call = self.store.update_admin(key, disabled=disabled, reason=reason, forced_down=forced_down)
        return await self.backends.store_call("update_admin", call)

    async def leave(self, service: Service | ServiceKey | Member) -> None:
        """Mark the record ``left`` and remove the driver member now; the service reads
        ``down`` (reason ``left``) until its next heartbeat."""
        target = service if isinstance(service, Service | Member) else await self._get(service)
        member = target if isinstance(target, Member) else target.member
        await self.backends.leave(member)

    async def delete(self, service: Service | ServiceKey, *, force: bool = False) -> None:
        """Remove the record and the driver member.

        Refuses (:class:`~sg.errors.Refused`) a service that is ``up`` or ``unknown``
        unless ``force``: deleting a live service makes it re-register on its next beat.
        """
        target = service if isinstance(service, Service) else await self._get(service)
        verdict = await self.verdict(target)
        if verdict.state != "down" and not force:
            raise Refused(
                f"service host={target.host!r} binary={target.binary!r} is {verdict.state} "
                f"({verdict.reason}); stop it first or use force"
            )
        try:
            await self.backends.driver_call("leave", self.driver.leave(target.member))
        except BackendUnavailable as exc:
            if not force:
                raise LeaveRefused(
                    self.driver.name, f"cannot remove the member ({exc}); nothing was deleted"
                ) from exc
            log.warning("delete_driver_leave_failed", host=target.host, binary=target.binary, error=str(exc))
        if not await self.backends.store_call("delete", self.store.delete(target.key)):
            raise _not_found(target.host, target.binary)
        log.info("service_deleted", host=target.host, binary=target.binary, forced=force)

    # -- heartbeat ------------------------------------------------------------------------

    def heartbeat(
        self,
        member: Member,
        *,
        interval: float | None = None,
        observer: BeatObserver | None = None,
        gate: Gate | None = None,
        leave_timeout: float = 0.8,
    ) -> Heartbeat:
        """A :class:`~sg.heartbeat.Heartbeat` for ``member`` every ``interval`` seconds
        (else the group's ``report_interval``), optionally gated by a health check;
        run it with ``await hb.run()``."""
        return Heartbeat(
            self.backends,
            member,
            interval=interval,
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
        hb = self.heartbeat(Member(host or socket.gethostname(), binary, topic, version))
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
        period = interval or min(self.timings.report_interval, 1.0)
        return _watch(self.list, self.backends.notifier, topic=topic, interval=period)
