"""The aiozk adaptation: the only module of the driver that imports aiozk.

:class:`ZooKeeperClient` is what :mod:`sg.drivers.zookeeper.driver` talks to: a
session that reconnects fast, re-authenticates and reports new sessions, and a
handful of calls whose expected outcomes (no node, node exists, version moved)
are return values and whose faults are :class:`~sg.errors.BackendUnavailable`,
mapped in one place (:func:`_mapped`). An aiozk upgrade touches this file only.

What aiozk 0.32.0 does, verified by reading its source (``session.py``,
``connection.py``, ``client.py``, ``recipes/base_watcher.py``) and by the tests
in ``tests/test_zookeeper*.py``, and what this module does about it:

* ``Session.repair_loop`` reconnects and, after an expiry, opens a new session by
  itself, but nothing re-creates ephemeral nodes. We subclass ``Session`` per
  client: ``establish_session`` reports each established session to the driver,
  whose keeper task re-creates every member this process holds as soon as the
  session id changes (not on the next beat). Each beat also checks that the node
  exists and that ``stat.ephemeral_owner`` is the current session.
* ``Session.find_server`` backs off 4, 8, 16, 32, 60 s (a fresh
  ``RetryPolicy.exponential_backoff(maximum=MAX_FIND_WAIT)`` per repair; patching
  the module global would change every client in the process). Our subclass
  overrides ``find_server`` with a short, capped, jittered backoff
  (``reconnect_max``), so a session survives an outage shorter than its timeout.
  Each attempt is bounded: aiozk's handshake reads ``srvr`` with no timeout.
* ``Connection.read_loop`` returns silently at EOF, leaving the session
  ``CONNECTED`` and pending calls hanging until a ping times out (2/3 of the
  session timeout). Our ``Connection`` subclass reports the end of its read loop;
  the session then moves to ``SUSPENDED`` (which starts the repair) and fails the
  pending calls.
* ``Session.send`` waits for a connected state forever (``RetryPolicy.forever``):
  every call runs under its caller's deadline, and the driver's reads check
  :attr:`ZooKeeperClient.connected` first, failing fast with
  ``BackendUnavailable`` while not connected, so a verdict is ``unknown``
  (``driver_unreachable``), never ``up`` and never a confident ``down``.
* aiozk never sends authentication. With ``auth=digest:user:secret`` our
  ``establish_session`` sends an ``AuthRequest`` on every new connection (ZooKeeper
  keeps auth per connection) before any other request.
* ``Session.close`` sends a ``CloseRequest`` that blocks while disconnected and
  then skips the rest of its cleanup; :meth:`ZooKeeperClient.close` bounds it and
  tears the session down by hand when it times out.
* Watches are one-shot; ``Session.set_existing_watches`` re-arms the paths that
  have callbacks after every reconnect.
* aiozk's request timeouts raise ``aiozk.exc.TimeoutError``, a ``ZKError``; its one
  builtin ``TimeoutError`` (``Connection.connect``) stays inside ``make_connection``,
  and any other is an ``OSError`` that :func:`_mapped` maps. So a ``TimeoutError``
  out of this module is always the caller's deadline.

* Replies are decoded in pure Python, and slowly for a listing: each child name of a
  ``get_children`` reply builds a ``struct.Struct`` of its own, and every read of a
  reply goes through ``asyncio.wait_for`` (a task per read). Our ``Connection``
  decodes ``GetChildren2`` replies itself (:func:`_decode_children`, registered in
  aiozk's ``response_xref`` under a key of ours, so no other aiozk client in the
  process changes) and reads a reply with ``readexactly`` under ``asyncio.timeout``:
  a listing of 1,000 members took 2.5x tooz's ``get_members`` before.

* A single member's check (a verdict) is one ``exists`` of its node, which ZooKeeper
  answers without an ACL check: :meth:`ZooKeeperClient.present` writes a ``getData``
  of the topic before it, in the same write, so a topic the reader may not list
  is refused as a listing's ``get_children`` is. Both are framed here and their
  replies not decoded (:data:`_ANSWERED`); the xids come from the session's counter.

aiozk uses asyncio directly (``asyncio.create_task``, futures): the driver works
on anyio's asyncio backend only.
"""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from enum import Enum
from typing import Any, NamedTuple

import anyio
from aiozk import ACL, WatchEvent, ZKClient, protocol
from aiozk import exc as zkexc
from aiozk.connection import Connection
from aiozk.protocol.stat import Stat
from aiozk.session import Session
from aiozk.states import States

from sg.drivers.zookeeper.url import DigestAuth
from sg.errors import BackendUnavailable, translate_errors
from sg.lazylog import get_logger
from sg.timings import capped_backoff

__all__ = ["Created", "NodeStat", "ZooKeeperClient"]

log = get_logger("sg.drivers.zookeeper")

NAME = "zookeeper"
#: What aiozk raises on a backend fault: its ZKError (lost connection, expired
#: session, its own timeouts, refused requests) and socket errors.
_FAULTS: tuple[type[BaseException], ...] = (zkexc.ZKError, OSError)
#: The watch events that mean "the children of this path may have changed".
_CHANGE_EVENTS = (WatchEvent.CHILDREN_CHANGED, WatchEvent.CREATED, WatchEvent.DELETED)


@contextmanager
def _mapped(what: str) -> Iterator[None]:
    """The one place aiozk's exceptions become :class:`BackendUnavailable`."""
    with translate_errors(NAME, what, _FAULTS):
        try:
            yield
        except zkexc.NoAuth as exc:
            raise BackendUnavailable(NAME, f"{what}: not authorised (check auth=)") from exc


class NodeStat(NamedTuple):
    """What the driver needs of a znode's stat."""

    #: Session id owning the (ephemeral) node; 0 for a persistent node.
    ephemeral_owner: int
    version: int


class Created(Enum):
    """The outcome of :meth:`ZooKeeperClient.create`."""

    CREATED = "created"
    EXISTS = "exists"
    NO_PARENT = "no_parent"


#: Where aiozk finds our decoder of GetChildren2 replies: a key no opcode can be.
_FAST_CHILDREN = "sg.get_children2"
_INT = struct.Struct("!i")


class _Children(NamedTuple):
    """A decoded GetChildren2 reply: what aiozk's ``GetChildren2Response`` holds."""

    children: list[str]
    stat: Any


def _decode_children(raw: bytes) -> _Children:
    """Decode a GetChildren2 reply (a vector of UTF-8 strings, then a stat) the way
    aiozk 0.32.0's ``GetChildren2Response`` does, without a Struct per name."""
    unpack = _INT.unpack_from
    (count,) = unpack(raw, 0)
    offset = 4
    children: list[str] = []
    append = children.append
    for _ in range(max(count, 0)):
        (size,) = unpack(raw, offset)
        offset += 4
        end = offset + size
        append(raw[offset:end].decode("utf-8"))
        offset = end
    stat, _ = Stat.parse(raw, offset)
    return _Children(children, stat)


class _ChildrenDecoder:
    """What aiozk's ``read_response`` calls for our replies: ``deserialize(raw)``."""

    deserialize = staticmethod(_decode_children)


protocol.response_xref[_FAST_CHILDREN] = _ChildrenDecoder

#: Where aiozk finds the decoder of our bare reads (:meth:`_Connection.send_reads`):
#: only whether the server answered without an error is wanted, so nothing is decoded.
_ANSWERED = "sg.answered"
#: ZooKeeper's opcodes of the two bare reads (``OpCode.exists``, ``OpCode.getData``).
EXISTS, GET_DATA = 3, 4
#: A read request's frame: length, xid, opcode, then the path's length (the path's
#: UTF-8 bytes and a one-byte ``watch=false`` follow).
_READ_FRAME = struct.Struct("!iiii")


def _read_frame(opcode: int, path: str, xid: int) -> bytes:
    """One ``exists``/``getData`` request with ``watch=false``, framed: what aiozk's
    ``Connection.send`` writes for ``ExistsRequest``/``GetDataRequest(path, False)``."""
    raw = path.encode("utf-8")
    return _READ_FRAME.pack(13 + len(raw), xid, opcode, len(raw)) + raw + b"\x00"


class _AnsweredDecoder:
    """What aiozk's ``read_response`` calls for our bare reads: nothing to decode."""

    @staticmethod
    def deserialize(_raw: bytes) -> bool:
        return True


protocol.response_xref[_ANSWERED] = _AnsweredDecoder


class _Connection(Connection):  # type: ignore[misc]
    """A connection that reports the end of its read loop (aiozk ignores EOF) and
    decodes get_children replies and reads replies faster (see the module's notes)."""

    on_read_loop_end: Callable[[_Connection], None] | None = None

    def send(self, request: Any, xid: int | None = None) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = super().send(request, xid)
        if type(request) is protocol.GetChildren2Request and xid in self.opcode_xref:
            # Written already; its reply is read later, on this loop: decode it ourselves.
            self.opcode_xref[xid] = _FAST_CHILDREN
        return future

    async def _read(self, size: int = -1) -> bytes:
        if size < 0:
            return bytes(await super()._read(size))
        try:
            async with asyncio.timeout(self.read_timeout):
                data: bytes = await self.reader.readexactly(size)
                return data
        except (TimeoutError, asyncio.IncompleteReadError) as exc:
            # What aiozk raises when a reply does not arrive whole within read_timeout.
            raise zkexc.UnfinishedRead from exc

    def send_reads(self, reads: list[tuple[int, str, int]]) -> list[asyncio.Future[Any]]:
        """Write ``(opcode, path, xid)`` reads (``exists``/``getData``, no watch) in one
        write; each future gets ``(zxid, True)`` or the server's error (``NoNode``...).

        What ``Connection.send`` does for one request, without aiozk's generic
        serialisation (a ``BytesIO`` and a ``Primitive`` per field) and with one socket
        write for all: the replies are not decoded (:data:`_ANSWERED`)."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Any]] = []
        frames: list[bytes] = []
        for opcode, path, xid in reads:
            future: asyncio.Future[Any] = loop.create_future()
            futures.append(future)
            if self.closing:
                future.set_exception(zkexc.ConnectError(self.host, self.port))
                continue
            frames.append(_read_frame(opcode, path, xid))
            self.opcode_xref[xid] = _ANSWERED
            self.pending[xid] = future
        if frames:
            try:
                self.writer.write(b"".join(frames))
            except Exception:
                log.exception("zookeeper_write_failed")
                self.abort()  # as aiozk's send does: every pending future fails
        return futures

    def start_read_loop(self) -> None:
        super().start_read_loop()
        self.read_loop_task.add_done_callback(self._read_loop_ended)

    def _read_loop_ended(self, _task: asyncio.Task[None]) -> None:
        if self.on_read_loop_end is not None:
            self.on_read_loop_end(self)


class _Session(Session):  # type: ignore[misc]
    """aiozk's session with fast reconnects, loss detection at EOF, auth on every
    connection, and a callback for each established session."""

    conn: Any
    session_id: int | None
    xid: int

    def __init__(
        self,
        servers: str,
        timeout: float,
        *,
        reconnect_cap: float,
        auth: DigestAuth | None,
        on_established: Callable[[int, bool], None],
        on_lost: Callable[[], None],
    ) -> None:
        super().__init__(servers, timeout, None, False, max(1.0, min(5.0, timeout / 2)))
        self.reconnect_cap = reconnect_cap
        self.auth = auth
        self.on_established = on_established
        self.on_lost = on_lost
        self.last_established: int | None = None

    async def make_connection(self, host: str, port: str | int) -> _Connection | None:
        conn = _Connection(host, port, watch_handler=self.event_dispatch, read_timeout=self.read_timeout)
        try:
            # aiozk's handshake reads the `srvr` answer with no timeout of its own.
            await asyncio.wait_for(conn.connect(), self.read_timeout)
        except (TimeoutError, OSError, zkexc.ZKError):
            return None
        conn.on_read_loop_end = self._read_loop_ended
        return conn

    async def find_server(self, allow_read_only: bool) -> None:
        attempt = 0
        conn: _Connection | None = None
        while conn is None:
            if attempt:
                delay = capped_backoff(attempt, base=0.05, cap=self.reconnect_cap)
                await asyncio.sleep(delay * (0.5 + random.random() / 2))  # noqa: S311
            attempt += 1
            for host, port in random.sample(self.hosts, len(self.hosts)):
                conn = await self.make_connection(host, port)
                if conn is not None and conn.start_read_only and not allow_read_only:
                    _ = asyncio.create_task(conn.close(self.timeout))  # noqa: RUF006 - as aiozk does
                    conn = None
                if conn is not None:
                    break
            if conn is None and attempt in (1, 10, 100, 1000):
                log.warning("zookeeper_unreachable", attempts=attempt, servers=self._servers())
        old: Any = self.conn
        self.conn = conn
        if old is not None:
            _ = asyncio.create_task(old.close(self.timeout))  # noqa: RUF006 - as aiozk does

    def next_xid(self) -> int:
        """The next request id, as ``Session.send`` numbers its requests."""
        # Positive and within a signed 32-bit int: negative xids are special.
        self.xid = self.xid + 1 if self.xid < 0x7FFFFFFF else 1
        return int(self.xid)

    def _servers(self) -> str:
        return ",".join(f"{h}:{p}" for h, p in self.hosts)

    async def establish_session(self) -> None:
        await super().establish_session()
        if self.auth is not None:
            # Written before the read loop starts, so it precedes every other request.
            future = self.conn.send(protocol.AuthRequest(type=0, scheme="digest", auth=self.auth.credential))
            future.add_done_callback(_consume)
        session_id = self.session_id or 0
        new = session_id != self.last_established
        self.last_established = session_id
        self.on_established(session_id, new)

    def _read_loop_ended(self, conn: _Connection) -> None:
        if self.closing or conn is not self.conn:
            return
        if self.state.current_state in (States.CONNECTED, States.READ_ONLY):
            self.state.transition_to(States.SUSPENDED)
        conn.abort()
        self.on_lost()

    def teardown(self) -> None:
        """Stop everything this session runs, without talking to the server."""
        self.closing = True
        for task in (self.repair_loop_task, self.heartbeat_task):
            if task is not None and not task.done():
                task.cancel()
        if self.heartbeat_handle is not None:
            self.heartbeat_handle.cancel()
        if self.conn is not None:
            self.conn.closing = True
            if self.conn.read_loop_task is not None:
                self.conn.read_loop_task.cancel()
            if self.conn.writer is not None:
                self.conn.writer.close()
            self.conn.abort()


async def _reply(future: asyncio.Future[Any]) -> Any:
    """The future's result, or the exception it failed with (returned, so that the
    second of two pipelined replies is always retrieved)."""
    try:
        return await future
    except Exception as exc:  # cancellation (BaseException) propagates
        return exc


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("zookeeper_auth_failed", error=type(future.exception()).__name__)


def _acl(auth: DigestAuth | None) -> list[Any]:
    if auth is not None:
        owner = ACL.make("digest", auth.acl_id, True, True, True, True, True)
        return [owner, ACL.make("world", "anyone", read=True)]
    return [ACL.make("world", "anyone", True, True, True, True, True)]


class ZooKeeperClient:
    """One ZooKeeper session and the calls the driver makes over it.

    Paths are absolute. Faults raise :class:`BackendUnavailable`; no call bounds
    itself except :meth:`close` (the caller owns the deadline).
    """

    def __init__(
        self,
        hosts: str,
        session_timeout: float,
        *,
        reconnect_cap: float,
        auth: DigestAuth | None,
        on_established: Callable[[int, bool], None],
        on_lost: Callable[[], None],
    ) -> None:
        self.hosts = hosts
        self.session = _Session(
            hosts,
            session_timeout,
            reconnect_cap=reconnect_cap,
            auth=auth,
            on_established=on_established,
            on_lost=on_lost,
        )
        #: The aiozk client (tests read nodes through it).
        self.raw: Any = ZKClient(hosts, session_timeout=session_timeout)
        self.raw.session = self.session
        self.acl = _acl(auth)
        self.raw.default_acl = self.acl

    @property
    def session_id(self) -> int | None:
        """The current session id, or ``None`` before the first session."""
        return self.session.session_id

    @property
    def connected(self) -> bool:
        """True while the session is connected."""
        return bool(self.session.state.current_state == States.CONNECTED)

    @property
    def state(self) -> str:
        """The session state, for messages."""
        return str(self.session.state.current_state)

    @property
    def negotiated_timeout(self) -> float:
        """The session timeout the server granted, in seconds."""
        return float(self.session.timeout)

    async def start(self) -> None:
        """Start the session and wait until it is connected (the caller bounds the wait;
        the session keeps reconnecting in the background after that)."""
        with _mapped("connect"):
            await self.session.start()

    async def close(self, timeout: float) -> None:
        """End the session (its ephemeral nodes go at once), waiting at most ``timeout``."""
        try:
            with anyio.fail_after(timeout):
                await self.raw.close()
        except (TimeoutError, zkexc.ZKError, OSError) as exc:
            log.info("zookeeper_close_abandoned", error=type(exc).__name__)
        finally:
            self.session.teardown()

    async def stat(self, path: str) -> NodeStat | None:
        """The node's stat, or ``None`` if it does not exist."""
        with _mapped("exists"):
            try:
                response = await self.raw.send(protocol.ExistsRequest(path=path, watch=False))
            except zkexc.NoNode:
                return None
        return NodeStat(response.stat.ephemeral_owner, response.stat.version)

    async def present(self, parent: str, path: str) -> bool:
        """Whether ``path`` exists, asked only if ``parent``'s data may be read (else
        :class:`BackendUnavailable`, "not authorised"): one round trip.

        ZooKeeper checks no ACL on ``exists``, so a member of a topic whose digest ACL
        the reader lacks would read as present where ``get_children`` of the topic
        (what a listing does) is refused; the ``getData`` of the parent, written with
        the ``exists`` in one write and answered before it, keeps the two alike. A
        missing parent means a missing node, as for :meth:`children`.

        Both requests bypass ``Session.send`` (its retry bookkeeping, a heartbeat timer
        re-armed per request) and aiozk's generic encoding and stat decoding: the two
        cost less client CPU than aiozk's one ``exists`` (0.12 against 0.16 ms here).
        The caller checks the session is connected first; a connection lost in flight
        fails the call (``ConnectError``, a fault) instead of waiting for a new one, as
        a read while disconnected does.
        """
        session = self.session
        with _mapped("exists"):
            futures = session.conn.send_reads(
                [(GET_DATA, parent, session.next_xid()), (EXISTS, path, session.next_xid())]
            )
            try:
                readable, exists = [await _reply(f) for f in futures]
            finally:
                for future in futures:
                    if not future.done():
                        future.cancel()  # our caller was cancelled: the reply is dropped
            if isinstance(readable, BaseException) and not isinstance(readable, zkexc.NoNode):
                raise readable
            if isinstance(exists, zkexc.NoNode):
                return False
            if isinstance(exists, BaseException):
                raise exists
            session.last_zxid = exists[0]
            return True

    async def create(self, path: str, data: bytes = b"", *, ephemeral: bool = False) -> Created:
        """Create a node with the client's ACL."""
        with _mapped("create"):
            try:
                await self.raw.create(path, data, acl=self.acl, ephemeral=ephemeral)
            except zkexc.NoNode:
                return Created.NO_PARENT
            except zkexc.NodeExists:
                return Created.EXISTS
        return Created.CREATED

    async def delete(self, path: str, version: int = -1) -> bool:
        """Delete the node (only at ``version`` unless -1); ``False`` if it is gone or
        its version moved."""
        with _mapped("delete"):
            try:
                await self.raw.send(protocol.DeleteRequest(path=path, version=version))
            except (zkexc.NoNode, zkexc.BadVersion):
                return False
        return True

    async def children(self, path: str, *, watch: bool = False) -> list[str] | None:
        """The names of the node's children, or ``None`` if it does not exist. With
        ``watch``, arm a one-shot child watch (or, if absent, a creation watch)."""
        with _mapped("watch" if watch else "get_children"):
            try:
                return list(await self.raw.get_children(path, watch=watch))
            except zkexc.NoNode:
                if watch:
                    await self.raw.exists(path, watch=True)
                return None

    def add_change_callback(self, path: str, callback: Callable[[str], None]) -> None:
        """Call ``callback(path)`` when a watch on ``path`` fires."""
        for event in _CHANGE_EVENTS:
            self.session.add_watch_callback(event, path, callback)

    def remove_change_callback(self, path: str, callback: Callable[[str], None]) -> None:
        """Undo :meth:`add_change_callback`."""
        for event in _CHANGE_EVENTS:
            with suppress(KeyError):
                self.session.remove_watch_callback(event, path, callback)
