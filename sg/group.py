"""ServiceGroup: the library's front door.

A group pairs a :class:`~sg.store.base.Store` (the records) with a
:class:`~sg.drivers.base.Driver` (the second liveness signal), through
:class:`~sg.backends.Backends`, which owns every deadline. A service is up only
when its record is fresh *and* the driver still holds it; both checks run
concurrently, and the rules that decide live in :mod:`sg.verdict` alone.
"""

from __future__ import annotations

import builtins
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Self

import anyio

from sg.backends import Backends
from sg.config import Settings
from sg.drivers.base import Driver, Membership
from sg.errors import BackendUnavailable, LeaveRefused, NotFound, Refused
from sg.guard import Guard, recovery_window
from sg.heartbeat import BeatObserver, Gate, Heartbeat
from sg.lazylog import get_logger
from sg.model import (
    Action,
    Actor,
    Member,
    Service,
    ServiceAction,
    ServiceEvent,
    ServiceKey,
    ServiceStatus,
    StoreContext,
    Verdict,
    collection_deferred,
)
from sg.store.base import Store, Survey, SurveyQuery
from sg.timings import Timings
from sg.verdict import judge_all, store_unreachable
from sg.watch import watch as _watch

__all__ = ["ServiceGroup"]

log = get_logger("sg.group")


def _not_found(host: str, binary: str) -> NotFound:
    return NotFound(f"no service host={host!r} binary={binary!r}")


class ServiceGroup:
    """Liveness of services: records in a store plus membership in a driver.

    Use as an async context manager::

        async with ServiceGroup.from_urls("sqlite:///tmp/sg.db") as group:
            async with group.join("sg-worker", "workers"):
                ...
    """

    def __init__(self, backends: Backends, *, guard: Guard | None = None) -> None:
        self.backends = backends
        #: The fleet guard: fleet-wide events read ``unknown``, not mass ``down``.
        self.guard = guard or Guard()

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceGroup:
        """Build the store and driver named by ``settings`` (not yet opened)."""
        backends = Backends.from_urls(
            settings.store, settings.driver, settings.timings, roll_urls=settings.roll_drivers
        )
        return cls(backends, guard=settings.guard)

    @classmethod
    def from_urls(
        cls,
        store: str | None = None,
        driver: str | None = None,
        *,
        guard: Guard | None = None,
        **timings: float,
    ) -> ServiceGroup:
        """Build from URLs (the defaults when ``None``) and timings (``report_interval=...``)."""
        defaults = Settings()
        backends = Backends.from_urls(store or defaults.store, driver or defaults.driver, Timings(**timings))
        return cls(backends, guard=guard)

    #: The context of a survey that read nothing.
    _no_context = StoreContext()

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

    def _query(
        self,
        *,
        topic: str | None = None,
        binary: str | None = None,
        host: str | None = None,
        key: ServiceKey | None = None,
        uuid: str | None = None,
    ) -> SurveyQuery:
        timings = self.timings
        window = recovery_window(timings)
        return SurveyQuery(timings.service_down_time, window, topic, binary, host, key, uuid)

    async def _survey(self, query: SurveyQuery) -> Survey:
        return await self.backends.store_call("survey", self.store.survey(query))

    def _guarded(
        self, survey: Survey, membership: Membership, driver_error: str | None
    ) -> list[ServiceStatus]:
        with collection_deferred():
            statuses, any_down = judge_all(
                survey.services,
                service_down_time=self.timings.service_down_time,
                # A plain (host, binary) tuple hashes and compares equal to a ServiceKey.
                seen=membership.get,  # type: ignore[arg-type]
                driver_error=driver_error,
            )
        if not any_down:
            # The guard only ever turns a down verdict into unknown: nothing to do.
            return statuses
        return self.guard.apply(statuses, survey.context, self.timings, topic_sizes=survey.topic_sizes)

    async def _statuses(self, survey: Survey) -> list[ServiceStatus]:
        membership, driver_error = await self.backends.membership(survey.services)
        return self._guarded(survey, membership, driver_error)

    async def verdict(self, service: Service | Member) -> Verdict:
        """Re-read the record and ask the driver, concurrently, and judge.

        An unreachable store or driver gives ``unknown``, never ``up``. Raises
        :class:`~sg.errors.NotFound` if the record no longer exists.
        """
        survey = Survey([], self._no_context)
        store_error: str | None = None
        answer: tuple[Membership, str | None] = ({}, None)
        query = self._query(key=service.key)

        async def ask_driver() -> None:
            nonlocal answer
            answer = await self.backends.membership([service])

        if self.backends.local_membership:
            # No round trip to overlap with the store's: no task to spawn either.
            try:
                survey = await self._survey(query)
            except BackendUnavailable as exc:
                store_error = str(exc)
            else:
                await ask_driver()
        else:
            # The driver is asked in a child task and the store read in this one: one
            # task spawned per verdict instead of two (a verdict is a hot call).
            async def read_store() -> None:
                nonlocal survey, store_error
                try:
                    survey = await self._survey(query)
                except BackendUnavailable as exc:
                    store_error = str(exc)

            async with anyio.create_task_group() as tg:
                tg.start_soon(ask_driver)
                await read_store()
        if store_error is not None:
            return store_unreachable(store_error)
        if not survey.services:
            raise _not_found(service.host, service.binary)
        return self._guarded(survey, *answer)[0].verdict

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
        key = ServiceKey.of(host, binary)
        statuses = await self._statuses(await self._survey(self._query(key=key)))
        if not statuses:
            raise _not_found(host, binary)
        return statuses[0]

    async def get_by_uuid(self, uuid: str) -> ServiceStatus:
        """The record with ``uuid`` and its verdict; :class:`NotFound` if absent."""
        statuses = await self._statuses(await self._survey(self._query(uuid=uuid)))
        if not statuses:
            raise NotFound(f"no service uuid={uuid!r}")
        return statuses[0]

    async def list(
        self, *, topic: str | None = None, binary: str | None = None, host: str | None = None
    ) -> list[ServiceStatus]:
        """Every matching service with its verdict, in O(1) round trips: one query,
        then one batch membership call to the driver; the fleet guard reads fleet-wide
        events as ``unknown`` (:mod:`sg.guard`)."""
        survey = await self._survey(self._query(topic=topic, binary=binary, host=host))
        return await self._statuses(survey)

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
        self,
        service: Service | ServiceKey,
        disabled: bool,
        reason: str | None = None,
        *,
        actor: Actor | None = None,
    ) -> Service:
        """Enable or disable a service (its ``updated_at`` is never touched); with
        ``actor``, the change and its audit row commit together."""
        key = service.key if isinstance(service, Service) else service
        change = self.store.set_disabled(key, disabled, reason, actor=actor)
        return await self.backends.store_call("set_disabled", change)

    async def set_forced_down(
        self, service: Service | ServiceKey, forced_down: bool, *, actor: Actor | None = None
    ) -> Service:
        """Force a service down (or clear it); ``updated_at`` is never touched; with
        ``actor``, audited."""
        key = service.key if isinstance(service, Service) else service
        change = self.store.set_forced_down(key, forced_down, actor=actor)
        return await self.backends.store_call("set_forced_down", change)

    async def actions(
        self, *, uuid: str | None = None, key: ServiceKey | None = None
    ) -> builtins.list[ServiceAction]:
        """The audit trail of a service (by ``uuid``, or ``key`` over every record that
        had it), oldest first."""
        return await self.backends.store_call("actions", self.store.actions(uuid=uuid, key=key))

    async def prunable(self, down_for: float, *, topic: str | None = None) -> builtins.list[ServiceStatus]:
        """Services ``down`` (never ``unknown``) whose last beat is more than ``down_for``
        seconds old by the store's clock. One that never beat has no age and is left."""
        return [
            s
            for s in await self.list(topic=topic)
            if s.verdict.state == "down" and s.service.age is not None and s.service.age > down_for
        ]

    async def prune(
        self, down_for: float, *, actor: Actor, topic: str | None = None
    ) -> builtins.list[tuple[ServiceStatus, str | None]]:
        """Delete each of :meth:`prunable` through :meth:`delete` (``leave()`` first, an
        audit row ``prune``): ``(status, None)`` when deleted, else the error's message
        (a service that came back is refused, and the others still go)."""
        done: builtins.list[tuple[ServiceStatus, str | None]] = []
        for status in await self.prunable(down_for, topic=topic):
            try:
                await self.delete(status.service, actor=actor, action="prune")
            except (Refused, NotFound) as exc:
                done.append((status, str(exc)))
            else:
                done.append((status, None))
        return done

    async def update_admin(
        self,
        service: Service | ServiceKey,
        *,
        disabled: bool | None = None,
        reason: str | None = None,
        forced_down: bool | None = None,
        actor: Actor | None = None,
    ) -> Service:
        """Change ``disabled`` (with ``reason``) and ``forced_down`` in one store write, so
        a failure never leaves half a change; ``None`` leaves that flag as it is. With
        ``actor``, audited in the same transaction."""
        key = service.key if isinstance(service, Service) else service
        call = self.store.update_admin(
            key, disabled=disabled, reason=reason, forced_down=forced_down, actor=actor
        )
        return await self.backends.store_call("update_admin", call)

    async def leave(self, service: Service | ServiceKey | Member) -> None:
        """Mark the record ``left`` and remove the driver member now; the service reads
        ``down`` (reason ``left``) until its next heartbeat."""
        target = service if isinstance(service, Service | Member) else await self._get(service)
        member = target if isinstance(target, Member) else target.member
        await self.backends.leave(member)

    async def delete(
        self,
        service: Service | ServiceKey,
        *,
        force: bool = False,
        actor: Actor | None = None,
        action: Action = "delete",
    ) -> None:
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
        removal = self.store.delete(target.key, actor=actor, action=action)
        if not await self.backends.store_call("delete", removal):
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
        async with self.join_member(Member(host or socket.gethostname(), binary, topic, version)) as hb:
            yield hb

    @asynccontextmanager
    async def join_member(self, member: Member) -> AsyncIterator[Heartbeat]:
        """:meth:`join` for a whole :class:`~sg.model.Member` (its zone, whether a new
        record starts enabled)."""
        hb = self.heartbeat(member)
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
