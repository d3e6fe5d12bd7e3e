"""The ``memcached`` driver: a member is a key with a TTL, refreshed on every beat.

``memcached://mc1:11211,mc2:11211?prefix=sg&pool_size=2``

- Each key lives on one server, chosen by rendezvous hashing
  (:mod:`sg.drivers.memcached_keys`); one aiomcache client per server.
- A listing is one multi-get per server, run concurrently. Members whose server
  cannot be reached are reported as ``None`` (the verdict says
  ``driver_unreachable``), the others keep their true answer.
- A beat ``touch``-es its key; if the key is gone (the server restarted, or the
  key expired during a stall) it is written again and the beat reports a re-join.
- Every call runs under ``DriverOptions.timeout``; aiomcache's exceptions become
  :class:`~sg.errors.BackendUnavailable` / :class:`~sg.errors.BackendTimeout` here.

Expiry: memcached counts whole seconds and its clock ticks once a second, so a
key written with expiry ``N`` disappears between ``N - 1`` and ``N`` seconds
later. See :func:`member_ttl` for how the expiry is chosen.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

import aiomcache
import anyio
import structlog
from aiomcache.client import acquire
from aiomcache.pool import Connection

from sg.config import redact_url
from sg.drivers.base import DriverOptions, Membership
from sg.drivers.memcached_keys import PREFIX_PATTERN, member_key, pick_server
from sg.errors import BackendTimeout, BackendUnavailable, ConfigError
from sg.model import Service, ServiceKey

__all__ = ["MAX_RELATIVE_EXPIRY", "MemcachedConfig", "MemcachedDriver", "member_ttl"]

log = structlog.get_logger("sg.drivers.memcached")

T = TypeVar("T")

DEFAULT_PORT = 11211
#: memcached reads a larger expiry as an absolute Unix time.
MAX_RELATIVE_EXPIRY = 2_592_000
MAX_POOL_SIZE = 64
#: Share of the driver timeout one server gets to answer a listing.
MEMBERS_DEADLINE_SHARE = 0.8
#: What is stored under a member key; only its presence matters.
VALUE = b"1"

#: Faults of one request that a fresh connection may cure (a restarted server
#: leaves dead sockets in the pool): retried once, then reported. EOFError covers
#: asyncio.IncompleteReadError.
_CONNECTION_FAULTS: tuple[type[BaseException], ...] = (OSError, EOFError, aiomcache.ClientException)


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


@dataclass(frozen=True, slots=True)
class MemcachedConfig:
    """What a ``memcached://`` URL says: servers as ``(host, port)``, key prefix, pool size."""

    servers: tuple[tuple[str, int], ...]
    prefix: str = "sg"
    pool_size: int = 2

    def __post_init__(self) -> None:
        if not self.servers:
            raise ConfigError("memcached driver: no servers given")
        names = [f"{h}:{p}" for h, p in self.servers]
        if len(set(names)) != len(names):
            raise ConfigError(f"memcached driver: a server is listed twice in {','.join(names)}")
        if not PREFIX_PATTERN.fullmatch(self.prefix):
            raise ConfigError(f"memcached driver: prefix {self.prefix!r} must be 1-64 of A-Z a-z 0-9 _ . -")
        if not 1 <= self.pool_size <= MAX_POOL_SIZE:
            raise ConfigError(f"memcached driver: pool_size must be 1-{MAX_POOL_SIZE}, got {self.pool_size}")

    @property
    def server_names(self) -> tuple[str, ...]:
        """``host:port`` of each server; the names keys are hashed against."""
        return tuple(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.servers)

    @classmethod
    def from_url(cls, url: str) -> MemcachedConfig:
        """Parse ``memcached://host[:port][,host[:port]...][/]?prefix=P&pool_size=N``."""
        parts = urlsplit(url)
        if parts.path not in ("", "/") or parts.fragment:
            raise ConfigError(f"driver URL {redact_url(url)!r}: memcached takes servers and options only")
        if "@" in parts.netloc:
            raise ConfigError(f"driver URL {redact_url(url)!r}: memcached takes no user or password")
        servers = tuple(_parse_server(item, url) for item in parts.netloc.split(","))
        try:
            query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        except ValueError as exc:
            raise ConfigError(f"driver URL {redact_url(url)!r}: malformed options: {exc}") from exc
        unknown = sorted(set(query) - {"prefix", "pool_size"})
        if unknown:
            raise ConfigError(
                f"driver URL {redact_url(url)!r}: unknown option(s) {unknown}; known: pool_size, prefix"
            )
        values: dict[str, str] = {}
        for name, given in query.items():
            if len(given) != 1:
                raise ConfigError(f"driver URL {redact_url(url)!r}: option {name!r} given more than once")
            values[name] = given[0]
        pool_size = 2
        if "pool_size" in values:
            try:
                pool_size = int(values["pool_size"])
            except ValueError as exc:
                raise ConfigError(f"driver URL {redact_url(url)!r}: pool_size must be an integer") from exc
        return cls(servers=servers, prefix=values.get("prefix", "sg"), pool_size=pool_size)


def _parse_server(item: str, url: str) -> tuple[str, int]:
    if not item:
        raise ConfigError(f"driver URL {redact_url(url)!r}: empty server name (expected host[:port],...)")
    if item.startswith("["):
        host, bracket, rest = item[1:].partition("]")
        if not bracket or not host or (rest and not rest.startswith(":")):
            raise ConfigError(f"driver URL {redact_url(url)!r}: bad server {item!r}")
        port_text = rest[1:] if rest else ""
    else:
        host, _, port_text = item.partition(":")
        if not host or ":" in port_text:
            raise ConfigError(f"driver URL {redact_url(url)!r}: bad server {item!r} (IPv6 goes in brackets)")
    if not port_text:
        return host.lower(), DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"driver URL {redact_url(url)!r}: bad port in {item!r}")
    return host.lower(), int(port_text)


class _Client(aiomcache.Client):
    """aiomcache's client, made safe on a connection closed mid-response.

    aiomcache 0.8.2 reads a one-line reply with ``while not line.endswith(b"\\r\\n")``;
    at end of stream ``readline`` returns ``b""`` without yielding, so a server
    that dies between request and reply spins the event loop forever (measured).
    One ``readline`` is enough for these replies; a short one means the peer hung up.
    """

    async def _execute_simple_command(self, conn: Connection, raw_command: bytes) -> bytes:
        conn.writer.write(raw_command)
        await conn.writer.drain()
        line = await conn.reader.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionResetError("memcached closed the connection before replying")
        return line[:-2]

    @acquire
    async def present(self, conn: Connection, keys: Sequence[bytes]) -> set[bytes]:
        """Which of ``keys`` the server holds: one ``get`` request.

        aiomcache's ``multi_get`` validates every key with a regex and reads each
        value with two stream calls (about 4 us a key); this reads the reply in
        large chunks and parses it in place. ``keys`` must be valid and distinct
        (member keys are, by construction).
        """
        if not keys:
            return set()
        # No drain: memcached answers a long get while still reading it, so the reply
        # must be read while the transport sends the rest, or both sides could stall.
        conn.writer.write(b"get " + b" ".join(keys) + b"\r\n")
        found: set[bytes] = set()
        buf = bytearray()
        pos = 0
        while True:
            end = buf.find(b"\r\n", pos)
            if end < 0:
                await _read_more(conn, buf)
                continue
            line = bytes(buf[pos:end])
            if line == b"END":
                if end + 2 != len(buf) or len(found) > len(keys):
                    raise aiomcache.ClientException("unexpected data after END", bytes(buf[end:][:80]))
                return found
            terms = line.split(b" ")
            if len(terms) != 4 or terms[0] != b"VALUE" or not terms[3].isdigit():
                raise aiomcache.ClientException("get failed", line[:80])
            pos = end + 2 + int(terms[3]) + 2  # the value and its CRLF
            while len(buf) < pos:
                await _read_more(conn, buf)
            found.add(terms[1])


async def _read_more(conn: Connection, buf: bytearray) -> None:
    chunk = await conn.reader.read(1 << 16)
    if not chunk:
        raise ConnectionResetError("memcached closed the connection mid-reply")
    buf += chunk


class MemcachedDriver:
    """Members as TTL keys spread over one or more memcached servers."""

    name = "memcached"

    def __init__(self, config: MemcachedConfig, options: DriverOptions | None = None) -> None:
        self.config = config
        self.options = options or DriverOptions()
        self.ttl = member_ttl(self.options.service_down_time, self.options.report_interval)
        self.timeout = self.options.timeout
        self.servers = config.server_names
        #: Requests sent per server (a metric; also what the tests count).
        self.requests = dict.fromkeys(self.servers, 0)
        self._clients: list[_Client] | None = None
        self._placement: dict[tuple[str, str, str], tuple[int, bytes]] = {}

    @classmethod
    def from_url(cls, url: str, options: DriverOptions) -> MemcachedDriver:
        """Build from a ``memcached://`` URL (see :meth:`MemcachedConfig.from_url`)."""
        return cls(MemcachedConfig.from_url(url), options)

    def __repr__(self) -> str:
        return f"MemcachedDriver(servers={','.join(self.servers)}, prefix={self.config.prefix!r})"

    # -- keys ------------------------------------------------------------------------------

    def placement(self, service: Service) -> tuple[int, bytes]:
        """The server index and key of ``service``'s member."""
        ident = (service.topic, service.host, service.binary)
        found = self._placement.get(ident)
        if found is None:
            key = member_key(self.config.prefix, *ident)
            found = (pick_server(self.servers, key), key)
            if len(self._placement) >= 100_000:
                # Bounded memo: hashing is cheap, a listing of a large fleet is what it saves.
                self._placement.clear()
            self._placement[ident] = found
        return found

    # -- connections -----------------------------------------------------------------------

    async def open(self) -> None:
        """Create one client per server; they connect on first use."""
        if self._clients is None:
            self._clients = [
                _Client(host, port, pool_size=self.config.pool_size) for host, port in self.config.servers
            ]

    async def close(self) -> None:
        """Close every client's connections. Members stay until they expire
        (the heartbeat deletes its own on leave)."""
        clients, self._clients = self._clients, None
        for client in clients or ():
            with anyio.CancelScope(shield=True):
                await client.close()

    def _client(self, index: int) -> _Client:
        if self._clients is None:
            raise BackendUnavailable(self.name, "driver is not open")
        return self._clients[index]

    async def _attempt(self, index: int, op: Callable[[_Client], Awaitable[T]]) -> T:
        client = self._client(index)
        self.requests[self.servers[index]] += 1
        done = False
        try:
            result = await op(client)
            done = True
            return result
        finally:
            if not done:
                # An interrupted call (error, timeout, cancellation) may leave half a
                # reply on its connection, which aiomcache would hand to the next caller.
                with anyio.CancelScope(shield=True):
                    await client.close()

    async def _call(
        self, index: int, what: str, op: Callable[[_Client], Awaitable[T]], timeout: float | None = None
    ) -> T:
        """One request to server ``index``, retried once on a fresh connection,
        under the driver's deadline (or ``timeout``); faults mapped to ``BackendUnavailable``."""
        server = self.servers[index]
        timeout = self.timeout if timeout is None else timeout
        try:
            with anyio.fail_after(timeout):
                try:
                    return await self._attempt(index, op)
                except _CONNECTION_FAULTS as exc:
                    if isinstance(exc, aiomcache.ValidationException):
                        raise
                    log.debug("memcached_retry", server=server, op=what, error=repr(exc))
                    return await self._attempt(index, op)
        except TimeoutError as exc:
            raise BackendTimeout(self.name, f"{what} on {server}: no answer within {timeout:g}s") from exc
        except _CONNECTION_FAULTS as exc:
            raise BackendUnavailable(self.name, f"{what} on {server}: {type(exc).__name__}: {exc}") from exc

    # -- members ---------------------------------------------------------------------------

    async def join(self, service: Service) -> None:
        """Write the member key with the TTL."""
        index, key = self.placement(service)
        await self._call(index, "set", lambda c: c.set(key, VALUE, exptime=self.ttl))

    async def refresh(self, service: Service) -> bool:
        """Extend the key's TTL; write it again if it is gone (returns ``True``: a re-join)."""
        index, key = self.placement(service)
        if await self._call(index, "touch", lambda c: c.touch(key, self.ttl)):
            return False
        await self._call(index, "set", lambda c: c.set(key, VALUE, exptime=self.ttl))
        return True

    async def leave(self, service: Service) -> None:
        """Delete the key now (absent is fine)."""
        index, key = self.placement(service)
        await self._call(index, "delete", lambda c: c.delete(key))

    async def members(self, services: Sequence[Service]) -> Membership:
        """One multi-get per server, concurrently. Services on a server that fails
        are ``None``; if every server involved fails, raise its error."""
        by_server: dict[int, list[tuple[bytes, ServiceKey]]] = {}
        for service in services:
            index, key = self.placement(service)
            by_server.setdefault(index, []).append((key, service.key))
        result: dict[ServiceKey, bool | None] = {}
        errors: list[BackendUnavailable] = []
        # Shorter than the caller's deadline (the same driver timeout), so one silent
        # server costs only its own members, not the whole answer.
        per_server = self.timeout * MEMBERS_DEADLINE_SHARE

        async def ask(index: int, owners: list[tuple[bytes, ServiceKey]]) -> None:
            keys = list(dict.fromkeys(key for key, _ in owners))
            try:
                found = await self._call(index, "get", lambda c: c.present(keys), per_server)
            except BackendUnavailable as exc:
                errors.append(exc)
                result.update((owner, None) for _, owner in owners)
                return
            result.update((owner, key in found) for key, owner in owners)

        async with anyio.create_task_group() as tg:
            for index, owners in by_server.items():
                tg.start_soon(ask, index, owners)
        if errors and len(errors) == len(by_server):
            raise errors[0]
        return result
