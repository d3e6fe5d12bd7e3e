"""The ``memcached`` driver: a member is a key with a TTL, refreshed on every beat.

``memcached://mc1:11211,mc2:11211?prefix=sg&pool_size=2`` (options in
:mod:`sg.drivers.memcached.url`).

- Each key lives on one server, chosen by rendezvous hashing
  (:mod:`sg.drivers.memcached.keys`); one client per server
  (:mod:`sg.drivers.memcached.client`, the only module that imports aiomcache).
- A listing is one multi-get per server, run concurrently. Members whose server
  cannot be reached are reported as ``None`` (the verdict says
  ``driver_unreachable``), the others keep their true answer.
- A beat ``touch``-es its key; if the key is gone (the server restarted, or the
  key expired during a stall) it is written again and the beat reports a re-join.
- Deadlines are the caller's. A listing (and :meth:`MemcachedDriver.ping`) gives each
  server :data:`SERVER_DEADLINE_SHARE` of the time left to the caller's deadline, so
  one silent server costs only its own members and is named, not the whole answer.

Expiry: memcached counts whole seconds and its clock ticks once a second, so a
key written with expiry ``N`` disappears between ``N - 1`` and ``N`` seconds
later. See :func:`member_ttl` for how the expiry is chosen.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Self, TypeVar

import anyio

from sg.drivers.base import Membership
from sg.drivers.memcached.client import ServerClient
from sg.drivers.memcached.keys import member_key, pick_server
from sg.drivers.memcached.url import MemcachedOptions, parse_url
from sg.errors import BackendTimeout, BackendUnavailable, ConfigError
from sg.guard import recovery_window
from sg.model import RECOVERING, Member, Presence, Service, ServiceKey
from sg.timings import Timings

__all__ = ["MAX_RELATIVE_EXPIRY", "SERVER_DEADLINE_SHARE", "MemcachedDriver", "member_ttl"]

T = TypeVar("T")

#: memcached reads a larger expiry as an absolute Unix time.
MAX_RELATIVE_EXPIRY = 2_592_000
#: Share of the time left to the caller's deadline that one server gets to answer
#: a listing or a ping; the rest is for reporting the others' answers.
SERVER_DEADLINE_SHARE = 0.8


def member_ttl(service_down_time: float, report_interval: float) -> int:
    """The expiry, in whole seconds, written with every member key.

    ``ceil(service_down_time)``, so a dead member's key is gone within the down
    time rounded up to a whole second. Because memcached may expire a key up to
    one second early, the expiry is raised to at least ``floor(report_interval) + 2``
    so that a key never lapses between two beats (this only bites for sub-second
    down times, as in tests). An expiry above :data:`MAX_RELATIVE_EXPIRY` (30 days)
    is refused: memcached would read it as an absolute time.
    """
    if not math.isfinite(service_down_time) or service_down_time <= 0:
        raise ConfigError(f"service_down_time must be a positive number, got {service_down_time!r}")
    ttl = max(math.ceil(service_down_time), math.floor(report_interval) + 2, 1)
    if ttl > MAX_RELATIVE_EXPIRY:
        raise ConfigError(
            f"service_down_time {service_down_time:g}s is too long for the memcached driver: "
            f"its key expiry would be {ttl}s, and memcached reads more than {MAX_RELATIVE_EXPIRY}s "
            "(30 days) as an absolute time"
        )
    return ttl


def _server_deadline() -> float:
    """The deadline of one server's part: its share of the caller's remaining time."""
    deadline = anyio.current_effective_deadline()
    if math.isinf(deadline):
        return deadline
    now = anyio.current_time()
    return now + max(0.0, deadline - now) * SERVER_DEADLINE_SHARE


class MemcachedDriver:
    """Members as TTL keys spread over one or more memcached servers."""

    name = "memcached"

    def __init__(self, options: MemcachedOptions, timings: Timings | None = None) -> None:
        self.options = options
        self.timings = timings or Timings()
        self.ttl = member_ttl(self.timings.service_down_time, self.timings.report_interval)
        self.servers = options.server_names
        self._clients = [
            ServerClient(host, port, name, options.pool_size)
            for (host, port), name in zip(options.servers, self.servers, strict=True)
        ]
        self._placement: dict[tuple[str, str, str], tuple[int, bytes]] = {}

    @classmethod
    def from_url(cls, url: str, timings: Timings) -> Self:
        """Build from a ``memcached://`` URL (see :mod:`sg.drivers.memcached.url`)."""
        return cls(parse_url(url), timings)

    def __repr__(self) -> str:
        return f"MemcachedDriver(servers={','.join(self.servers)}, prefix={self.options.prefix!r})"

    @property
    def requests(self) -> dict[str, int]:
        """Requests sent per server (a metric; also what the tests count)."""
        return {c.name: c.requests for c in self._clients}

    # -- keys ------------------------------------------------------------------------------

    def placement(self, member: Service | Member) -> tuple[int, bytes]:
        """The server index and key of ``member``."""
        ident = (member.topic, member.host, member.binary)
        found = self._placement.get(ident)
        if found is None:
            key = member_key(self.options.prefix, *ident)
            found = (pick_server(self.servers, key), key)
            if len(self._placement) >= 100_000:
                # Bounded memo: hashing is cheap, a listing of a large fleet is what it saves.
                self._placement.clear()
            self._placement[ident] = found
        return found

    # -- connections -----------------------------------------------------------------------

    async def open(self) -> None:
        """Create one client per server; they connect on first use."""
        for client in self._clients:
            client.open()

    async def close(self) -> None:
        """Close every client's connections (no round trip). Members stay until they
        expire (the heartbeat deletes its own on leave)."""
        for client in self._clients:
            await client.close()

    async def _part(
        self, deadline: float, client: ServerClient, what: str, call: Callable[[], Awaitable[T]]
    ) -> T:
        """One server's part of a multi-server call, under ``deadline``."""
        started = anyio.current_time()
        with anyio.CancelScope(deadline=deadline):
            return await call()
        # Only our own scope lands here: the caller's deadline propagates as cancellation.
        raise BackendTimeout(
            self.name,
            f"{what} on {client.name}: no answer within {deadline - started:.3g}s "
            "(its share of the caller's deadline)",
        )

    async def ping(self) -> None:
        """Ask every server for its version, concurrently; raise naming those that failed."""
        deadline = _server_deadline()
        failed: list[BackendUnavailable] = []

        async def one(client: ServerClient) -> None:
            try:
                await self._part(deadline, client, "version", client.version)
            except BackendUnavailable as exc:
                failed.append(exc)

        async with anyio.create_task_group() as tg:
            for client in self._clients:
                tg.start_soon(one, client)
        if failed:
            details = "; ".join(sorted(exc.detail for exc in failed))
            raise BackendUnavailable(
                self.name, f"{len(failed)} of {len(self._clients)} servers did not answer: {details}"
            )

    # -- members ---------------------------------------------------------------------------

    async def _uptime(self, deadline: float, client: ServerClient) -> float | None:
        """Seconds since ``client``'s server started (asked at most once per interval),
        or ``None`` if it does not say in time: no evidence, then."""
        try:
            return await self._part(
                deadline, client, "stats", lambda: client.uptime(self.timings.report_interval)
            )
        except BackendUnavailable:
            return None

    async def join(self, member: Member) -> None:
        """Write the member key with the TTL."""
        index, key = self.placement(member)
        await self._clients[index].write(key, self.ttl)

    async def refresh(self, member: Member) -> bool:
        """Extend the key's TTL; write it again if it is gone (returns ``True``: a re-join)."""
        index, key = self.placement(member)
        client = self._clients[index]
        if await client.touch(key, self.ttl):
            return False
        await client.write(key, self.ttl)
        return True

    async def leave(self, member: Member) -> None:
        """Delete the key now (absent is fine)."""
        index, key = self.placement(member)
        await self._clients[index].delete(key)

    async def members(self, services: Sequence[Service | Member]) -> Membership:
        """One multi-get per server, concurrently. Services on a server that fails
        are ``None``; if every server involved fails, raise its error.

        A key missing from a server that started less than one recovery window ago
        (``report_interval`` x 1.5), whose record last beat before the server started,
        is :data:`~sg.model.RECOVERING`: the restart lost it, and its owner's next beat
        writes it again. The server's uptime is asked only when such a key is missing,
        at most once per ``report_interval`` (and again after any connection fault,
        which is how a restart shows).
        """
        by_server: dict[int, list[tuple[bytes, ServiceKey]]] = {}
        for service in services:
            index, key = self.placement(service)
            by_server.setdefault(index, []).append((key, service.key))
        result: dict[ServiceKey, Presence] = {}
        errors: list[BackendUnavailable] = []
        deadline = _server_deadline()
        # Records carry the age of their last beat (store clock); members carry none.
        ages = {s.key: s.age for s in services if isinstance(s, Service) and s.age is not None}

        async def ask(index: int, owners: list[tuple[bytes, ServiceKey]]) -> None:
            client = self._clients[index]
            keys = list(dict.fromkeys(key for key, _ in owners))
            try:
                found = await self._part(deadline, client, "get", lambda: client.present(keys))
            except BackendUnavailable as exc:
                errors.append(exc)
                result.update((owner, None) for _, owner in owners)
                return
            # A missing key whose record last beat before its server started was lost in a
            # restart (its owner has not beaten since): recovering, within the window.
            lost = any(key not in found and owner in ages for key, owner in owners)
            uptime = await self._uptime(deadline, client) if lost else None
            window = recovery_window(self.timings)
            for key, owner in owners:
                present: Presence = key in found
                if not present and uptime is not None:
                    age = ages.get(owner)
                    # memcached counts whole seconds: within the first second of a server,
                    # a key deleted after a beat reads recovering too (never up).
                    if age is not None and age > uptime and uptime < window:
                        present = RECOVERING
                result[owner] = present

        if len(by_server) == 1:
            # One server (one service's verdict, or a one-server pool): no task group.
            ((index, owners),) = by_server.items()
            await ask(index, owners)
        else:
            async with anyio.create_task_group() as tg:
                for index, owners in by_server.items():
                    tg.start_soon(ask, index, owners)
        if errors and len(errors) == len(by_server):
            raise errors[0]
        return result
