"""The ``zookeeper`` driver: a member is an ephemeral znode.

URL: ``zookeeper://zk1:2181,zk2:2181/chroot?session_timeout=10&auth=digest:user:secret``
(options in :mod:`sg.drivers.zookeeper.url`). Members live at
``<chroot>/<topic>/<host>:<binary>`` (names encoded by
:mod:`sg.drivers.zookeeper.names`), holding a small JSON payload. Listing a group
is one ``get_children`` per topic; one member is one ``exists``. aiozk's quirks are handled in
:mod:`sg.drivers.zookeeper.client`; nothing here imports aiozk.

Deadlines: every call runs under its caller's deadline. What the driver starts by
itself bounds itself with ``timings.driver_timeout``: the wait for a session in
:meth:`ZooKeeperDriver.open`, the keeper task that re-creates members after a new
session, and :meth:`ZooKeeperDriver.close`. Reads (``members``, ``ping``) fail fast
while the session is not connected.

The keeper is an asyncio task because the driver outlives the task that opens it.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import time
from collections.abc import Sequence
from typing import Self

import anyio

from sg.drivers.base import Membership
from sg.drivers.zookeeper.client import Created, ZooKeeperClient
from sg.drivers.zookeeper.names import encode_name, member_name
from sg.drivers.zookeeper.url import ZooKeeperOptions, parse_url
from sg.errors import BackendTimeout, BackendUnavailable
from sg.guard import recovery_window
from sg.lazylog import get_logger
from sg.model import RECOVERING, Member, Presence, Service, ServiceKey
from sg.timings import Timings

__all__ = ["SETTLE", "ZooKeeperDriver"]

log = get_logger("sg.drivers.zookeeper")

#: After a pushed change, the longest wait before one more listing (see wait_for_change).
SETTLE = 0.25
#: Attempts to take a member's node over from another session before giving up.
TAKEOVER_ATTEMPTS = 4


class ZooKeeperDriver:
    """Members as ephemeral znodes, re-created after a lost session.

    ``rejoins`` counts nodes re-created (after a new session or found missing on
    a beat); ``sessions`` counts sessions established.
    """

    name = "zookeeper"

    def __init__(self, options: ZooKeeperOptions, timings: Timings | None = None) -> None:
        self.options = options
        self.timings = timings or Timings()
        self.rejoins = 0
        self.sessions = 0
        #: Monotonic time of the last reconnection; long ago until there is one.
        self._connected_at = -math.inf
        self._ever_connected = False
        self._client: ZooKeeperClient | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._new_session: asyncio.Event | None = None
        self._held: dict[ServiceKey, Member] = {}
        self._locks: dict[ServiceKey, asyncio.Lock] = {}
        self._rejoined: set[ServiceKey] = set()
        self._seen: dict[str, frozenset[str]] = {}
        self._names: dict[tuple[str, str], tuple[ServiceKey, str]] = {}
        self._waiters: set[asyncio.Future[None]] = set()
        self._settling = False
        self._started = time.time()

    @classmethod
    def from_url(cls, url: str, timings: Timings) -> Self:
        """``zookeeper://host:port[,host:port...]/chroot?session_timeout=S&auth=digest:U:P``."""
        return cls(parse_url(url), timings)

    def __repr__(self) -> str:
        return f"ZooKeeperDriver({self.options.hosts}{self.options.chroot})"

    # -- paths --------------------------------------------------------------------------

    def topic_path(self, topic: str) -> str:
        """The znode holding the members of ``topic``."""
        return f"{self.options.chroot}/{encode_name(topic)}"

    def member_path(self, member: Member | Service) -> str:
        """The ephemeral znode of ``member``."""
        return f"{self.topic_path(member.topic)}/{member_name(member.key)}"

    # -- connection ---------------------------------------------------------------------

    @property
    def client(self) -> ZooKeeperClient:
        """The open client; :class:`BackendUnavailable` if the driver is not open."""
        if self._client is None:
            raise BackendUnavailable(self.name, "driver is not open")
        return self._client

    @property
    def session_id(self) -> int | None:
        """The current session id, or ``None`` before the first session."""
        return None if self._client is None else self._client.session_id

    @property
    def connected(self) -> bool:
        """True while the session is connected."""
        return self._client is not None and self._client.connected

    async def open(self) -> None:
        """Start the session and wait, at most ``driver_timeout``, until it is connected.

        If that times out the session keeps reconnecting in the background.
        """
        if self._client is None:
            self._new_session = asyncio.Event()
            self._client = ZooKeeperClient(
                self.options.hosts,
                self.options.session_timeout,
                reconnect_cap=self.options.reconnect_cap,
                auth=self.options.auth,
                on_established=self._established,
                on_lost=self._wake_watchers,
            )
            self._keeper = asyncio.create_task(self._keep(), name="sg-zookeeper-keeper")
        timeout = self.timings.driver_timeout
        try:
            # The session is work of our own: without a bound an unreachable ensemble
            # would hold a caller that set no deadline forever.
            with anyio.fail_after(timeout):
                await self._client.start()
        except TimeoutError as exc:
            raise BackendTimeout(self.name, f"no session within {timeout:g}s ({self.options.hosts})") from exc
        negotiated = self._client.negotiated_timeout
        if abs(negotiated - self.options.session_timeout) > 1e-3:
            log.warning(
                "zookeeper_session_timeout_bounded",
                requested=self.options.session_timeout,
                negotiated=negotiated,
            )

    async def close(self) -> None:
        """End the session (its ephemeral nodes go at once), within ``driver_timeout``
        (at most 2 s); idempotent."""
        client, keeper = self._client, self._keeper
        self._client = self._keeper = None
        self._held.clear()
        self._wake_watchers()
        if keeper is not None:
            keeper.cancel()
        if client is not None:
            await client.close(min(self.timings.driver_timeout, 2.0))

    async def ping(self) -> None:
        """One round trip (``exists`` on the chroot); fails fast while disconnected."""
        client = self.client
        self._fail_fast("ping")
        await client.stat(self.options.chroot)

    def _established(self, session_id: int, new: bool) -> None:
        # A reconnection (not the first connection): the ensemble was disrupted (an
        # election, an outage), and its members' agents may be re-creating their nodes.
        if self._ever_connected:
            self._connected_at = time.monotonic()
        self._ever_connected = True
        if new:
            self.sessions += 1
            log.info("zookeeper_session_established", session=hex(session_id), sessions=self.sessions)
            if self._new_session is not None:
                self._new_session.set()
        self._wake_watchers()

    def _fail_fast(self, what: str) -> None:
        if not self.connected:
            state = "closed" if self._client is None else self._client.state
            raise BackendUnavailable(self.name, f"{what}: not connected to {self.options.hosts} ({state})")

    async def _ensure_parents(self, path: str) -> None:
        client = self.client
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            await client.create("/" + "/".join(parts[:i]))

    def _payload(self, member: Member) -> bytes:
        return json.dumps(
            {
                "host": member.host,
                "binary": member.binary,
                "topic": member.topic,
                "version": member.version,
                "pid": os.getpid(),
                "hostname": socket.gethostname(),
                "started": round(self._started, 3),
            },
            separators=(",", ":"),
        ).encode()

    # -- members ------------------------------------------------------------------------

    async def _ensure(self, member: Member) -> bool:
        """Make sure our session owns the member's node; True if it had to create it."""
        lock = self._locks.setdefault(member.key, asyncio.Lock())
        async with lock:
            client = self.client
            path = self.member_path(member)
            for _ in range(TAKEOVER_ATTEMPTS):
                stat = await client.stat(path)
                if stat is not None and stat.ephemeral_owner == self.session_id:
                    return False
                if stat is not None:
                    # Left by a session of ours that died (or by a duplicate agent):
                    # (host, binary) is unique, so it must not block the re-join.
                    log.info(
                        "zookeeper_member_taken_over",
                        host=member.host,
                        binary=member.binary,
                        previous_owner=hex(stat.ephemeral_owner),
                    )
                    await client.delete(path, stat.version)
                    continue
                created = await client.create(path, self._payload(member), ephemeral=True)
                if created is Created.CREATED:
                    return True
                if created is Created.NO_PARENT:
                    await self._ensure_parents(path)
            raise BackendUnavailable(self.name, f"could not take over {path!r} (contended)")

    async def join(self, member: Member) -> None:
        """Hold an ephemeral node for ``member`` (and re-create it after a new session)."""
        self._held[member.key] = member
        self._rejoined.discard(member.key)
        await self._ensure(member)

    async def refresh(self, member: Member) -> bool:
        """Check the node exists and belongs to this session; re-create it if not.

        Returns ``True`` if it was re-created, now or by the keeper since the last beat.
        """
        self._held.setdefault(member.key, member)
        created = await self._ensure(member)
        if created:
            self.rejoins += 1
        reported = member.key in self._rejoined
        self._rejoined.discard(member.key)
        return created or reported

    async def leave(self, member: Member) -> None:
        """Delete the member's node now, whoever created it."""
        self._held.pop(member.key, None)
        self._rejoined.discard(member.key)
        await self.client.delete(self.member_path(member))

    async def members(self, services: Sequence[Service | Member]) -> Membership:
        """One ``get_children`` per topic, concurrently (for one service, one ``exists``:
        :meth:`_one`); fails fast while disconnected.

        A topic that cannot be read (a digest ACL the reader lacks, a fault) leaves its
        services ``None`` (unknown), the others answered; only when no topic can be read
        does it raise. Each task catches its own error: one escaping the task group
        would arrive as an ``ExceptionGroup`` that no caller maps."""
        client = self.client
        self._fail_fast("members")
        if len(services) == 1:
            return await self._one(client, services[0])
        topics = sorted({s.topic for s in services})
        children: dict[str, frozenset[str]] = {}
        errors: list[BackendUnavailable] = []

        async def one(topic: str) -> None:
            try:
                children[topic] = frozenset(await client.children(self.topic_path(topic)) or ())
            except BackendUnavailable as exc:
                errors.append(exc)

        if len(topics) == 1:
            await one(topics[0])  # the common case: no task group for one request
        else:
            async with anyio.create_task_group() as tg:
                for topic in topics:
                    tg.start_soon(one, topic)
        if errors and len(errors) == len(topics):
            raise errors[0]
        if errors:
            log.warning("zookeeper_topics_unreadable", count=len(errors), error=str(errors[0]))
        self._seen.update(children)
        # Once per service of a listing: the key and node name come from a bounded memo
        # (encoding the two names was most of the call beside aiozk's decode).
        names = self._names
        if len(names) > 100_000:
            names.clear()
        result: dict[ServiceKey, Presence] = {}
        for s in services:
            ident = (s.host, s.binary)
            found = names.get(ident)
            if found is None:
                key = ServiceKey(s.host, s.binary)
                found = names[ident] = (key, member_name(key))
            names_in_topic = children.get(s.topic)
            if names_in_topic is None:
                result[found[0]] = None  # its topic could not be read: cannot tell
            else:
                result[found[0]] = True if found[1] in names_in_topic else self._missing(s)
        return result

    async def _one(self, client: ZooKeeperClient, service: Service | Member) -> Membership:
        """One service (a verdict, a ``get``): one ``exists`` of its node, not the whole
        topic's ``get_children`` (3.5 ms for 10,000 members where ``exists`` takes
        0.3 ms). The topic's read permission is checked in the same round trip
        (:meth:`ZooKeeperClient.present`), so a topic the reader may not list is
        unknown here too. The answer does not update what :meth:`wait_for_change`
        compares with: that is the last listing's."""
        key = service.key
        held = await client.present(self.topic_path(service.topic), self.member_path(service))
        return {key: True if held else self._missing(service)}

    @property
    def reconnected_at(self) -> float:
        """Monotonic time of the last reconnection (``-inf`` before the first)."""
        return self._connected_at

    def _missing(self, service: Service | Member) -> Presence:
        """A member not held: :data:`RECOVERING` if it is missing right after our own
        reconnection (within the recovery window) while its record last beat before it
        (its agent is re-creating the node after the same disruption, and its next beat
        at the latest writes it again), else ``False``."""
        since = time.monotonic() - self._connected_at
        age = service.age if isinstance(service, Service) else None
        if age is not None and age > since and since < recovery_window(self.timings):
            return RECOVERING
        return False

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
                    for member in held:
                        if member.key in self._held:
                            tg.start_soon(self._recreate, member, recreated)
            except Exception:  # the keeper must outlive a bug in one re-creation
                log.exception("zookeeper_keeper_failed")
            self.rejoins += len(recreated)
            self._rejoined.update(k for k in recreated if k in self._held)
            if recreated:
                # The heartbeat logs each re-join (once) on its next beat.
                log.debug(
                    "zookeeper_members_recreated", count=len(recreated), session=hex(self.session_id or 0)
                )

    async def _recreate(self, member: Member, recreated: list[ServiceKey]) -> None:
        timeout = self.timings.driver_timeout
        try:
            # Nobody waits on the keeper: it bounds its own work; the next beat retries.
            with anyio.fail_after(timeout):
                if await self._ensure(member):
                    recreated.append(member.key)
        except TimeoutError:
            log.warning(
                "zookeeper_recreate_failed",
                host=member.host,
                binary=member.binary,
                error=f"timed out ({timeout:g}s)",
            )
        except BackendUnavailable as exc:
            log.warning("zookeeper_recreate_failed", host=member.host, binary=member.binary, error=str(exc))

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
        client = self.client
        settling, self._settling = self._settling, False
        if settling:
            timeout = min(timeout, SETTLE)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        topics = [topic] if topic is not None else sorted(self._seen)
        paths = [self.topic_path(t) for t in topics]
        if topic is None:
            paths.append(self.options.chroot)

        def fire(_path: str) -> None:
            self._settling = True
            if not future.done():
                future.set_result(None)

        self._waiters.add(future)
        for path in paths:
            client.add_change_callback(path, fire)
        try:
            with anyio.move_on_after(timeout):
                if not self.connected:
                    await future
                    return True
                for t, path in zip([*topics, None], paths, strict=False):
                    names = frozenset(await client.children(path, watch=True) or ())
                    if t is not None and t in self._seen and self._seen[t] != names:
                        return True
                await future
                return True
            return settling
        finally:
            self._waiters.discard(future)
            for path in paths:
                client.remove_change_callback(path, fire)
