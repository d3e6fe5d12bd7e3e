"""The ``zookeeper`` driver: a member is an ephemeral znode (aiozk).

URL: ``zookeeper://zk1:2181,zk2:2181/chroot?session_timeout=10&auth=digest:user:secret``.
Members live at ``<chroot>/<topic>/<host>:<binary>`` (each name encoded by
:func:`encode_name`), holding a small JSON payload. Listing a group is one
``get_children`` per topic.

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
  every call here runs under its own deadline (``anyio.fail_after``), and reads
  fail fast with ``BackendUnavailable`` while not connected, so a verdict is
  ``unknown`` (``driver_unreachable``), never ``up`` and never a confident ``down``.
* aiozk never sends authentication. With ``auth=digest:user:secret`` our
  ``establish_session`` sends an ``AuthRequest`` on every new connection (ZooKeeper
  keeps auth per connection) before any other request.
* ``Session.close`` sends a ``CloseRequest`` that blocks while disconnected and
  then skips the rest of its cleanup; :meth:`ZooKeeperDriver.close` bounds it and
  tears the session down by hand when it times out.
* Watches are one-shot; ``Session.set_existing_watches`` re-arms the paths that
  have callbacks after every reconnect. :meth:`ZooKeeperDriver.wait_for_change`
  arms a child watch each time it is called.

aiozk uses asyncio directly (``asyncio.create_task``, futures): this driver works
on anyio's asyncio backend only, and its keeper is an asyncio task because the
driver outlives the task that opens it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import json
import os
import random
import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import anyio
import structlog
from aiozk import ACL, WatchEvent, ZKClient, protocol
from aiozk import exc as zkexc
from aiozk.connection import Connection
from aiozk.session import Session
from aiozk.states import States

from sg.config import redact_url
from sg.drivers.base import DriverOptions, Membership
from sg.errors import BackendTimeout, BackendUnavailable, ConfigError
from sg.model import Service, ServiceKey

__all__ = ["ZooKeeperDriver", "ZooKeeperOptions", "decode_name", "encode_name", "member_name"]

log = structlog.get_logger("sg.drivers.zookeeper")

DEFAULT_CHROOT = "/servicegroup"
#: After a pushed change, the longest wait before one more listing (see wait_for_change).
SETTLE = 0.25
#: Separates the encoded host and binary in a member's node name.
SEPARATOR = ":"
_SAFE_ASCII = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~+,=@")


def _keep(ch: str) -> bool:
    if ch in _SAFE_ASCII:
        return True
    code = ord(ch)
    # ZooKeeper rejects these ranges in node names (PathUtils.validatePath).
    return code >= 0xA0 and not 0xD800 <= code <= 0xF8FF and not 0xFFF0 <= code <= 0xFFFF


_ALL_SAFE = re.compile(r"[A-Za-z0-9\-_.~+,=@]+")


@functools.lru_cache(maxsize=65536)
def encode_name(name: str) -> str:
    """Encode a host, binary or topic as one znode name that cannot escape its path.

    Characters outside a safe set (``/``, ``%``, ``:``, spaces, controls, NUL, and
    what ZooKeeper forbids) become ``%XX`` per UTF-8 byte; a name made only of dots
    (``.``, ``..``) has its dots encoded too. :func:`decode_name` reverses it exactly.
    """
    if _ALL_SAFE.fullmatch(name) and name.strip("."):
        return name
    out = "".join(
        ch if _keep(ch) else "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass")) for ch in name
    )
    if out and set(out) == {"."}:
        out = "%2E" * len(out)
    return out


def decode_name(encoded: str) -> str:
    """The name :func:`encode_name` encoded."""
    return unquote(encoded, encoding="utf-8", errors="strict")


def member_name(key: ServiceKey) -> str:
    """The node name of a member: ``<host>:<binary>``, each encoded."""
    return f"{encode_name(key.host)}{SEPARATOR}{encode_name(key.binary)}"


def parse_member_name(name: str) -> ServiceKey:
    """The key of a member node name (the inverse of :func:`member_name`)."""
    host, sep, binary = name.partition(SEPARATOR)
    if not sep:
        raise ValueError(f"not a member node name: {name!r}")
    return ServiceKey(decode_name(host), decode_name(binary))


# -- options ------------------------------------------------------------------------------


def _positive(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"zookeeper option {name}={raw!r}: must be a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"zookeeper option {name}={raw!r}: must be a positive number of seconds")
    return value


@dataclass(frozen=True, slots=True)
class DigestAuth:
    """``digest:user:secret`` credentials; the secret never appears in ``repr``."""

    user: str
    secret: str

    def __repr__(self) -> str:
        return f"DigestAuth(user={self.user!r}, secret='***')"

    @property
    def credential(self) -> bytes:
        """What an ``AuthRequest`` carries."""
        return f"{self.user}:{self.secret}".encode()

    @property
    def acl_id(self) -> str:
        """The ``digest`` ACL id: ``user:base64(sha1(user:secret))``."""
        digest = hashlib.sha1(self.credential).digest()  # noqa: S324 - ZooKeeper's digest scheme
        return f"{self.user}:{base64.b64encode(digest).decode()}"


@dataclass(frozen=True, slots=True)
class ZooKeeperOptions:
    """Typed options of a ``zookeeper://`` URL."""

    hosts: str
    chroot: str = DEFAULT_CHROOT
    #: Requested session timeout in seconds (the server bounds it to 2-20 ticks).
    session_timeout: float = 10.0
    #: Longest wait between reconnect attempts; default min(1 s, session_timeout / 4).
    reconnect_max: float | None = None
    auth: DigestAuth | None = None

    @property
    def reconnect_cap(self) -> float:
        """The effective cap on the reconnect backoff."""
        return self.reconnect_max or min(1.0, self.session_timeout / 4)


def _parse_chroot(url: str, path: str) -> str:
    if path in ("", "/"):
        return DEFAULT_CHROOT
    segments = [s for s in path.split("/") if s]
    for seg in segments:
        if seg in (".", "..") or any(not _keep(ch) and ch not in "%:" for ch in seg):
            raise ConfigError(
                f"driver URL {_redact(url)!r}: chroot segment {seg!r} is not a valid znode name"
            )
    return "/" + "/".join(segments)


def _redact(url: str) -> str:
    """``url`` with the secret of an ``auth=digest:user:secret`` option masked."""
    return redact_url(url)


def parse_url(url: str) -> ZooKeeperOptions:
    """Parse and validate a ``zookeeper://`` URL; unknown options are errors that name them."""
    shown = _redact(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"driver URL {shown!r} is malformed: {exc}") from None
    hosts = parts.netloc
    if not hosts:
        raise ConfigError(f"driver URL {shown!r}: no ZooKeeper servers; use 'zookeeper://host:2181/chroot'")
    for server in hosts.split(","):
        host, colon, port = server.rpartition(":") if ":" in server else (server, "", "")
        if not host or (colon and not (port.isdigit() and 0 < int(port) < 65536)):
            raise ConfigError(f"driver URL {shown!r}: bad server {server!r} (want host:port)")
    values: dict[str, Any] = {"hosts": hosts, "chroot": _parse_chroot(url, parts.path)}
    for name, raw in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if name in values:
            raise ConfigError(f"driver URL {shown!r}: option {name!r} given twice")
        if name in ("session_timeout", "reconnect_max"):
            values[name] = _positive(name, raw)
        elif name == "auth":
            scheme, _, rest = raw.partition(":")
            user, _, secret = rest.partition(":")
            if scheme != "digest" or not user or not secret:
                raise ConfigError(f"driver URL {shown!r}: auth must be 'digest:USER:SECRET'")
            values[name] = DigestAuth(user, secret)
        else:
            known = "session_timeout, reconnect_max, auth"
            raise ConfigError(f"driver URL {shown!r}: unknown zookeeper option {name!r} (known: {known})")
    return ZooKeeperOptions(**values)


# -- aiozk subclasses ---------------------------------------------------------------------


class _Connection(Connection):  # type: ignore[misc]
    """A connection that reports the end of its read loop (aiozk ignores EOF)."""

    on_read_loop_end: Callable[[_Connection], None] | None = None

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
                delay = min(self.reconnect_cap, 0.05 * 2**attempt)
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


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("zookeeper_auth_failed", error=type(future.exception()).__name__)


# -- the driver ---------------------------------------------------------------------------


class ZooKeeperDriver:
    """Members as ephemeral znodes, re-created after a lost session.

    ``rejoins`` counts nodes re-created (after a new session or found missing on
    a beat); ``sessions`` counts sessions established.
    """

    name = "zookeeper"

    def __init__(self, options: ZooKeeperOptions, driver_options: DriverOptions | None = None) -> None:
        self.options = options
        self.timeout = (driver_options or DriverOptions()).timeout
        self.rejoins = 0
        self.sessions = 0
        self._client: Any = None
        self._session: _Session | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._new_session: asyncio.Event | None = None
        self._held: dict[ServiceKey, Service] = {}
        self._locks: dict[ServiceKey, asyncio.Lock] = {}
        self._rejoined: set[ServiceKey] = set()
        self._seen: dict[str, frozenset[str]] = {}
        self._waiters: set[asyncio.Future[None]] = set()
        self._settling = False
        self._started = time.time()
        if options.auth is not None:
            owner = ACL.make("digest", options.auth.acl_id, True, True, True, True, True)
            self._acl = [owner, ACL.make("world", "anyone", read=True)]
        else:
            self._acl = [ACL.make("world", "anyone", True, True, True, True, True)]

    @classmethod
    def from_url(cls, url: str, options: DriverOptions) -> ZooKeeperDriver:
        """``zookeeper://host:port[,host:port...]/chroot?session_timeout=S&auth=digest:U:P``."""
        return cls(parse_url(url), options)

    def __repr__(self) -> str:
        return f"ZooKeeperDriver({self.options.hosts}{self.options.chroot})"

    # -- paths --------------------------------------------------------------------------

    def topic_path(self, topic: str) -> str:
        """The znode holding the members of ``topic``."""
        return f"{self.options.chroot}/{encode_name(topic)}"

    def member_path(self, service: Service) -> str:
        """The ephemeral znode of ``service``."""
        return f"{self.topic_path(service.topic)}/{member_name(service.key)}"

    # -- connection ---------------------------------------------------------------------

    @property
    def session_id(self) -> int | None:
        """The current session id, or ``None`` before the first session."""
        return None if self._session is None else self._session.session_id

    @property
    def connected(self) -> bool:
        """True while the session is connected."""
        return self._session is not None and self._session.state.current_state == States.CONNECTED

    async def open(self) -> None:
        """Start the session and wait (under the deadline) until it is connected.

        If that times out the session keeps reconnecting in the background.
        """
        if self._client is None:
            self._new_session = asyncio.Event()
            self._session = _Session(
                self.options.hosts,
                self.options.session_timeout,
                reconnect_cap=self.options.reconnect_cap,
                auth=self.options.auth,
                on_established=self._established,
                on_lost=self._wake_watchers,
            )
            client = ZKClient(self.options.hosts, session_timeout=self.options.session_timeout)
            client.session = self._session
            client.default_acl = self._acl
            self._client = client
            self._keeper = asyncio.create_task(self._keep(), name="sg-zookeeper-keeper")
        try:
            with anyio.fail_after(self.timeout):
                await self._session.start()  # type: ignore[union-attr]
        except TimeoutError as exc:
            raise BackendTimeout(
                self.name, f"no session within {self.timeout:g}s ({self.options.hosts})"
            ) from exc
        negotiated = self._session.timeout  # type: ignore[union-attr]
        if abs(negotiated - self.options.session_timeout) > 1e-3:
            log.warning(
                "zookeeper_session_timeout_bounded",
                requested=self.options.session_timeout,
                negotiated=negotiated,
            )

    async def close(self) -> None:
        """End the session (its ephemeral nodes go at once), bounded; idempotent."""
        session, client, keeper = self._session, self._client, self._keeper
        self._client = self._session = self._keeper = None
        self._held.clear()
        self._wake_watchers()
        if keeper is not None:
            keeper.cancel()
        if session is None or client is None:
            return
        try:
            with anyio.fail_after(min(self.timeout, 2.0)):
                await client.close()
        except (TimeoutError, zkexc.ZKError, OSError) as exc:
            log.info("zookeeper_close_abandoned", error=type(exc).__name__)
        finally:
            session.teardown()

    def _require(self) -> Any:
        if self._client is None:
            raise BackendUnavailable(self.name, "driver is not open")
        return self._client

    def _established(self, session_id: int, new: bool) -> None:
        if new:
            self.sessions += 1
            log.info("zookeeper_session_established", session=hex(session_id), sessions=self.sessions)
            if self._new_session is not None:
                self._new_session.set()
        self._wake_watchers()

    async def _call(self, what: str, coro_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One aiozk call under its own deadline, its faults mapped to ours.

        ``NoNode``, ``NodeExists`` and ``BadVersion`` pass through: callers act on them.
        """
        try:
            with anyio.fail_after(self.timeout):
                return await coro_fn(*args, **kwargs)
        except TimeoutError as exc:
            raise BackendTimeout(self.name, f"{what}: no answer within {self.timeout:g}s") from exc
        except (zkexc.NoNode, zkexc.NodeExists, zkexc.BadVersion):
            raise
        except zkexc.NoAuth as exc:
            raise BackendUnavailable(self.name, f"{what}: not authorised (check auth=)") from exc
        except (zkexc.ZKError, OSError) as exc:
            raise BackendUnavailable(self.name, f"{what}: {type(exc).__name__} {exc}") from exc

    def _fail_fast(self, what: str) -> None:
        if not self.connected:
            state = "closed" if self._session is None else self._session.state.current_state
            raise BackendUnavailable(self.name, f"{what}: not connected to {self.options.hosts} ({state})")

    async def _stat(self, path: str) -> Any:
        client = self._require()
        try:
            response = await self._call("exists", client.send, protocol.ExistsRequest(path=path, watch=False))
        except zkexc.NoNode:
            return None
        return response.stat

    async def _ensure_parents(self, path: str) -> None:
        client = self._require()
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/" + "/".join(parts[:i])
            with contextlib.suppress(zkexc.NodeExists):
                await self._call("create", client.create, parent, acl=self._acl)

    def _payload(self, service: Service) -> bytes:
        return json.dumps(
            {
                "host": service.host,
                "binary": service.binary,
                "topic": service.topic,
                "version": service.version,
                "pid": os.getpid(),
                "hostname": socket.gethostname(),
                "started": round(self._started, 3),
            },
            separators=(",", ":"),
        ).encode()

    # -- members ------------------------------------------------------------------------

    async def _ensure(self, service: Service) -> bool:
        """Make sure our session owns the member's node; True if it had to create it."""
        key = service.key
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            client = self._require()
            path = self.member_path(service)
            for _ in range(4):
                stat = await self._stat(path)
                session_id = self.session_id
                if stat is not None and stat.ephemeral_owner == session_id:
                    return False
                if stat is not None:
                    # Left by a session of ours that died (or by a duplicate agent):
                    # (host, binary) is unique, so it must not block the re-join.
                    log.info(
                        "zookeeper_member_taken_over",
                        host=service.host,
                        binary=service.binary,
                        previous_owner=hex(stat.ephemeral_owner),
                    )
                    with contextlib.suppress(zkexc.NoNode, zkexc.BadVersion):
                        await self._call(
                            "delete", client.send, protocol.DeleteRequest(path=path, version=stat.version)
                        )
                    continue
                try:
                    await self._call(
                        "create", client.create, path, self._payload(service), acl=self._acl, ephemeral=True
                    )
                except zkexc.NoNode:
                    await self._ensure_parents(path)
                except zkexc.NodeExists:
                    pass
                else:
                    return True
            raise BackendUnavailable(self.name, f"could not take over {path!r} (contended)")

    async def join(self, service: Service) -> None:
        """Hold an ephemeral node for ``service`` (and re-create it after a new session)."""
        self._held[service.key] = service
        self._rejoined.discard(service.key)
        await self._ensure(service)

    async def refresh(self, service: Service) -> bool:
        """Check the node exists and belongs to this session; re-create it if not.

        Returns ``True`` if it was re-created, now or by the keeper since the last beat.
        """
        self._held.setdefault(service.key, service)
        created = await self._ensure(service)
        if created:
            self.rejoins += 1
        reported = service.key in self._rejoined
        self._rejoined.discard(service.key)
        return created or reported

    async def leave(self, service: Service) -> None:
        """Delete the member's node now, whoever created it."""
        self._held.pop(service.key, None)
        self._rejoined.discard(service.key)
        client = self._require()
        with contextlib.suppress(zkexc.NoNode):
            await self._call("delete", client.delete, self.member_path(service), force=True)

    async def members(self, services: Sequence[Service]) -> Membership:
        """One ``get_children`` per topic, concurrently; fails fast while disconnected."""
        client = self._require()
        self._fail_fast("members")
        topics = sorted({s.topic for s in services})
        children: dict[str, frozenset[str]] = {}

        async def one(topic: str) -> None:
            try:
                names = await self._call("get_children", client.get_children, self.topic_path(topic))
            except zkexc.NoNode:
                names = []
            children[topic] = frozenset(names)

        async with anyio.create_task_group() as tg:
            for topic in topics:
                tg.start_soon(one, topic)
        self._seen.update(children)
        return {s.key: member_name(s.key) in children[s.topic] for s in services}

    # -- keeper: re-create members after a new session ------------------------------------

    async def _keep(self) -> None:
        event = self._new_session
        assert event is not None
        while True:
            await event.wait()
            event.clear()
            held = list(self._held.values())
            if not held:
                continue
            recreated: list[ServiceKey] = []
            try:
                async with anyio.create_task_group() as tg:
                    for service in held:
                        if service.key in self._held:
                            tg.start_soon(self._recreate, service, recreated)
            except Exception:  # the keeper must outlive a bug in one re-creation
                log.exception("zookeeper_keeper_failed")
            self.rejoins += len(recreated)
            self._rejoined.update(k for k in recreated if k in self._held)
            if recreated:
                # The heartbeat logs each re-join (once) on its next beat.
                log.debug(
                    "zookeeper_members_recreated", count=len(recreated), session=hex(self.session_id or 0)
                )

    async def _recreate(self, service: Service, recreated: list[ServiceKey]) -> None:
        try:
            if await self._ensure(service):
                recreated.append(service.key)
        except BackendUnavailable as exc:
            log.warning("zookeeper_recreate_failed", host=service.host, binary=service.binary, error=str(exc))

    # -- watches ------------------------------------------------------------------------

    def _wake_watchers(self) -> None:
        for future in list(self._waiters):
            if not future.done():
                future.set_result(None)

    async def wait_for_change(self, topic: str | None, timeout: float) -> bool:
        """Wait for a member of ``topic`` (any topic if ``None``) to join or leave.

        Arms ZooKeeper child watches (push, re-armed on every call) and returns at
        once if the members already differ from the last :meth:`members` answer.
        A new or lost session counts as a change (verdicts may have moved).

        A member's node and its store record are written concurrently, so the
        listing that follows a push may run before the record changed: the call
        after a push waits at most :data:`SETTLE` seconds and then reports a change
        anyway, for one more listing.
        """
        client = self._require()
        settling, self._settling = self._settling, False
        if settling:
            timeout = min(timeout, SETTLE)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        topics = [topic] if topic is not None else sorted(self._seen)
        paths = [self.topic_path(t) for t in topics]
        if topic is None:
            paths.append(self.options.chroot)
        events = (WatchEvent.CHILDREN_CHANGED, WatchEvent.CREATED, WatchEvent.DELETED)

        def fire(_path: str) -> None:
            self._settling = True
            if not future.done():
                future.set_result(None)

        session = client.session
        self._waiters.add(future)
        for path in paths:
            for event in events:
                session.add_watch_callback(event, path, fire)
        try:
            with anyio.move_on_after(timeout):
                if not self.connected:
                    await future
                    return True
                for t, path in zip([*topics, None], paths, strict=False):
                    try:
                        names = frozenset(await self._call("watch", client.get_children, path, watch=True))
                    except zkexc.NoNode:
                        await self._call("watch", client.exists, path, watch=True)
                        names = frozenset()
                    if t is not None and t in self._seen and self._seen[t] != names:
                        return True
                await future
                return True
            return settling
        finally:
            self._waiters.discard(future)
            for path in paths:
                for event in events:
                    with contextlib.suppress(KeyError):
                        session.remove_watch_callback(event, path, fire)
