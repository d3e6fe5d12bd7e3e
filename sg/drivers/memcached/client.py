"""The aiomcache adaptation: the only module of the driver that imports aiomcache.

:class:`ServerClient` is one memcached server as the driver sees it: a few
requests, each retried once on a fresh connection, faults mapped in one place to
:class:`~sg.errors.BackendUnavailable` naming the server. An aiomcache upgrade
touches this file only.

What aiomcache 0.8.2 does, verified against real servers (``tests/test_memcached.py``):

* One server per client: the driver keeps one :class:`ServerClient` per server.
* A one-line reply is read with ``while not line.endswith(b"\\r\\n")``; at end of
  stream ``readline`` returns ``b""`` without yielding, so a server that dies
  between request and reply spins the event loop forever (measured).
  :class:`_Client` reads such a reply with one ``readline``.
* ``multi_get`` validates every key with a regex and reads each value with two
  stream calls (about 4 us a key); :meth:`_Client.present` sends one ``get`` and
  parses the reply in large chunks.
* After a server restart the pool holds dead sockets: the first call raises, then
  it recovers. Each request is retried once on a fresh connection.
* An interrupted call (error, deadline, cancellation) may leave half a reply on its
  connection, which aiomcache would hand to the next caller: the pool is cleared.
* No timeouts of its own: every request runs under its caller's deadline.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import aiomcache
import anyio
from aiomcache.client import acquire
from aiomcache.pool import Connection

from sg.errors import BackendUnavailable, translate_errors
from sg.lazylog import get_logger

__all__ = ["ServerClient"]

log = get_logger("sg.drivers.memcached")

T = TypeVar("T")

NAME = "memcached"
#: What is stored under a member key; only its presence matters.
VALUE = b"1"
#: Faults of one request that a fresh connection may cure (a restarted server
#: leaves dead sockets in the pool): retried once, then reported. EOFError covers
#: asyncio.IncompleteReadError.
_CONNECTION_FAULTS: tuple[type[BaseException], ...] = (OSError, EOFError, aiomcache.ClientException)


class _Client(aiomcache.Client):
    """aiomcache's client, made safe on a connection closed mid-response."""

    async def _execute_simple_command(self, conn: Connection, raw_command: bytes) -> bytes:
        # One readline is enough for these replies; a short one means the peer hung up.
        conn.writer.write(raw_command)
        await conn.writer.drain()
        line = await conn.reader.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionResetError("memcached closed the connection before replying")
        return line[:-2]

    @acquire
    async def present(self, conn: Connection, keys: Sequence[bytes]) -> set[bytes]:
        """Which of ``keys`` the server holds: one ``get`` request.

        ``keys`` must be valid and distinct (member keys are, by construction).
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


def _uptime_offset(version: bytes | None) -> float:
    """What memcached adds to its uptime: it dates its start back so that uptime is
    never zero, by 2 s since 1.6 (measured on 1.6.18: ``uptime 2`` half a second after
    the start) and by 62 s before (``process_started = time(0) - ITEM_UPDATE_INTERVAL - 2``)."""
    try:
        major, minor = (int(part) for part in (version or b"").decode().split(".")[:2])
    except ValueError:
        return 2.0
    return 2.0 if (major, minor) >= (1, 6) else 62.0


class ServerClient:
    """One memcached server: the requests the driver makes, and how many it sent."""

    def __init__(self, host: str, port: int, name: str, pool_size: int) -> None:
        self.host = host
        self.port = port
        #: ``host:port``, as errors name the server.
        self.name = name
        self.pool_size = pool_size
        #: Requests sent (a metric; also what the tests count).
        self.requests = 0
        self._client: _Client | None = None
        #: The server's uptime as last asked (monotonic time of the answer, seconds),
        #: forgotten on every connection fault: a restart shows as one.
        self._uptime: tuple[float, float] | None = None

    def open(self) -> None:
        """Create the client; it connects on first use."""
        if self._client is None:
            self._client = _Client(self.host, self.port, pool_size=self.pool_size)

    async def close(self) -> None:
        """Close the pooled connections (no network round trip)."""
        client, self._client = self._client, None
        if client is not None:
            with anyio.CancelScope(shield=True):
                await client.close()

    async def write(self, key: bytes, ttl: int) -> None:
        """Write ``key`` with expiry ``ttl`` seconds."""
        await self._call("set", lambda c: c.set(key, VALUE, exptime=ttl))

    async def touch(self, key: bytes, ttl: int) -> bool:
        """Extend ``key``'s expiry; ``False`` if the key is gone."""
        return await self._call("touch", lambda c: c.touch(key, ttl))

    async def delete(self, key: bytes) -> None:
        """Delete ``key`` (absent is fine)."""
        await self._call("delete", lambda c: c.delete(key))

    async def present(self, keys: Sequence[bytes]) -> set[bytes]:
        """Which of ``keys`` the server holds, in one request."""
        return await self._call("get", lambda c: c.present(keys))

    async def uptime(self, max_age: float) -> float:
        """Seconds since the server started: asked with ``stats`` unless an answer younger
        than ``max_age`` (and no connection fault since) is known."""
        now = time.monotonic()
        if self._uptime is not None and now - self._uptime[0] <= max_age:
            return self._uptime[1] + (now - self._uptime[0])
        stats = await self._call("stats", lambda c: c.stats())
        raw = stats.get(b"uptime")
        if raw is None or not raw.isdigit():
            raise BackendUnavailable(NAME, f"stats on {self.name}: no uptime in the answer")
        uptime = max(0.0, float(raw) - _uptime_offset(stats.get(b"version")))
        self._uptime = (time.monotonic(), uptime)
        return uptime

    async def version(self) -> None:
        """One round trip that touches no key."""
        await self._call("version", lambda c: c.version())

    async def _attempt(self, op: Callable[[_Client], Awaitable[T]]) -> T:
        client = self._client
        if client is None:
            raise BackendUnavailable(NAME, "driver is not open")
        self.requests += 1
        done = False
        try:
            result = await op(client)
            done = True
            return result
        finally:
            if not done:
                # Half a reply may be left on the connection: drop the pool.
                with anyio.CancelScope(shield=True):
                    await client.close()

    async def _call(self, what: str, op: Callable[[_Client], Awaitable[T]]) -> T:
        """One request, retried once on a fresh connection; faults become
        :class:`BackendUnavailable` naming the server. The caller's deadline applies."""
        with translate_errors(NAME, f"{what} on {self.name}", _CONNECTION_FAULTS):
            try:
                return await self._attempt(op)
            except _CONNECTION_FAULTS as exc:
                if isinstance(exc, aiomcache.ValidationException):
                    raise
                self._uptime = None
                log.debug("memcached_retry", server=self.name, op=what, error=repr(exc))
                return await self._attempt(op)
