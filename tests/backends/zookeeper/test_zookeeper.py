"""The ZooKeeper driver against a real ZooKeeper (in-process clients).

Process-level behaviour (kill -9, SIGTERM, SIGSTOP, server outages) is in
``test_zookeeper_agent.py``.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import pytest
import structlog
from aiozk import ZKClient
from aiozk import exc as zkexc

from sg import ServiceGroup
from sg.backends import load_backend_class
from sg.drivers.zookeeper import (
    ZooKeeperDriver,
    decode_name,
    member_name,
    parse_member_name,
    parse_url,
)
from sg.drivers.zookeeper.names import encode_name
from sg.errors import BackendUnavailable, ConfigError
from sg.model import Member, ServiceEvent, ServiceKey, ServiceStatus
from sg.redact import redact_url
from sg.testing.plugin import start_zookeeper
from sg.testing.servers import free_port
from sg.testing.zookeeper import ZooKeeperServer, expire_session, session_password
from sg.timings import Timings
from tests.support.waiting import eventually

T = TypeVar("T")
REPORT_INTERVAL = 0.5
SERVICE_DOWN_TIME = 30.0


async def expire(hosts: str, session_id: int, password: bytes | None = None) -> None:
    """Expire the session (``expire_session`` retries when its owner re-attaches first)."""
    assert await expire_session(hosts, session_id, password), f"could not expire session {session_id:#x}"


async def current(read: Callable[[], T]) -> T:
    """A probe for ``eventually`` that reads a value in this process."""
    await anyio.lowlevel.checkpoint()
    return read()


def svc(host: str = "host-1", binary: str = "sg-compute", topic: str = "compute") -> Member:
    return Member(host=host, binary=binary, topic=topic)


@pytest.fixture
async def driver(sg_zookeeper_url: str) -> AsyncIterator[ZooKeeperDriver]:
    d = ZooKeeperDriver.from_url(sg_zookeeper_url, Timings(driver_timeout=3))
    await d.open()
    try:
        yield d
    finally:
        await d.close()


def group_for(tmp_path: Path, driver_url: str) -> ServiceGroup:
    return ServiceGroup.from_urls(
        f"sqlite://{tmp_path}/services.db",
        driver_url,
        report_interval=REPORT_INTERVAL,
        service_down_time=SERVICE_DOWN_TIME,
        driver_timeout=3.0,
    )


# -- URL and names -----------------------------------------------------------------------


def test_url_options_are_typed_and_validated() -> None:
    opts = parse_url("zookeeper://zk1:2181,zk2:2181,zk3/sg/prod?session_timeout=2.5&reconnect_max=0.5")
    assert opts.hosts == "zk1:2181,zk2:2181,zk3"
    assert opts.chroot == "/sg/prod"
    assert opts.session_timeout == 2.5
    assert opts.reconnect_cap == 0.5
    assert parse_url("zookeeper://zk1:2181").chroot == "/servicegroup"
    with pytest.raises(ConfigError, match="'sesion_timeout'"):
        parse_url("zookeeper://zk1:2181/sg?sesion_timeout=2")
    with pytest.raises(ConfigError, match="session_timeout"):
        parse_url("zookeeper://zk1:2181/sg?session_timeout=-1")
    with pytest.raises(ConfigError, match="session_timeout"):
        parse_url("zookeeper://zk1:2181/sg?session_timeout=ten")
    with pytest.raises(ConfigError, match="no ZooKeeper servers"):
        parse_url("zookeeper:///sg")
    with pytest.raises(ConfigError, match="bad server"):
        parse_url("zookeeper://zk1:99999/sg")
    with pytest.raises(ConfigError, match="chroot"):
        parse_url("zookeeper://zk1:2181/sg/../etc")
    with pytest.raises(ConfigError, match="digest"):
        parse_url("zookeeper://zk1:2181/sg?auth=plain:user:pw")


def test_scheme_selects_the_driver() -> None:
    url = "zookeeper://127.0.0.1:1/x?session_timeout=3"
    d = load_backend_class("sg.drivers", url, "driver").from_url(url, Timings())
    assert isinstance(d, ZooKeeperDriver)
    assert d.options.session_timeout == 3


def test_secret_is_never_shown() -> None:
    secret = "s3cr3t-value"
    url = f"zookeeper://zk1:2181/sg?auth=digest:alice:{secret}"
    d = ZooKeeperDriver.from_url(url, Timings())
    assert secret not in repr(d)
    assert secret not in repr(d.options)
    with pytest.raises(ConfigError) as info:
        parse_url(url + "&bogus=1")
    assert secret not in str(info.value)
    assert "alice" in str(info.value)
    # What sg-api and error messages print for any backend URL.
    assert redact_url(url) == "zookeeper://zk1:2181/sg?auth=digest:alice:***"
    assert (
        redact_url("zookeeper://zk1:2181/sg?session_timeout=2") == "zookeeper://zk1:2181/sg?session_timeout=2"
    )


# -- members on a real ZooKeeper ---------------------------------------------------------


async def test_join_creates_ephemeral_node_with_payload(driver: ZooKeeperDriver) -> None:
    s = svc()
    await driver.join(s)
    client = driver.client.raw
    data, stat = await client.get(driver.member_path(s))
    assert stat.ephemeral_owner == driver.session_id
    assert stat.ephemeral_owner != 0
    import json

    payload = json.loads(data)
    assert (payload["host"], payload["binary"], payload["topic"]) == ("host-1", "sg-compute", "compute")
    assert {"pid", "version", "started"} <= payload.keys()
    assert await driver.members([s]) == {s.key: True}
    await driver.leave(s)
    assert await driver.members([s]) == {s.key: False}


async def test_odd_names_round_trip_through_zookeeper(driver: ZooKeeperDriver) -> None:
    names = ["a/b", "..", ".", "%2F", "a:b", "ünïcødé-主机", "y" * 255, "\ue000"]
    services = [svc(host=n, binary=n, topic=n) for n in names]
    for s in services:
        await driver.join(s)
    assert await driver.members(services) == {s.key: True for s in services}
    client = driver.client.raw
    for s in services:
        children = await client.get_children(driver.topic_path(s.topic))
        assert [parse_member_name(c) for c in children] == [s.key]
    # Nothing escaped the chroot: every topic is one level under it.
    roots = await client.get_children(driver.options.chroot)
    assert sorted(decode_name(r) for r in roots) == sorted(names)


async def test_membership_is_one_get_children_per_topic(driver: ZooKeeperDriver) -> None:
    services = [svc(host=f"h{i:03d}", topic=("compute" if i % 2 else "scheduler")) for i in range(100)]
    for s in services[:60]:
        await driver.join(s)
    client = driver.client.raw
    calls: list[str] = []
    real = client.get_children

    async def counted(path: str, watch: bool = False) -> Any:
        calls.append(path)
        return await real(path, watch=watch)

    client.get_children = counted
    membership = await driver.members(services)
    assert len(calls) == 2
    assert sum(membership.values()) == 60
    assert all(membership[s.key] for s in services[:60])


async def test_one_member_is_one_exists_and_agrees_with_the_listing(driver: ZooKeeperDriver) -> None:
    """A verdict asks the driver for one service: one ``exists`` of its node (with its
    topic's read check), never the whole topic's ``get_children``, and the same answer
    a listing gives: held, missing from a topic, in a topic that does not exist."""
    held = [svc(host=f"h{i:03d}") for i in range(5)]
    for s in held:
        await driver.join(s)
    missing, elsewhere = svc(host="h999"), svc(host="h100", topic="never-made")
    services = [*held, missing, elsewhere]
    client = driver.client
    listed: list[str] = []
    real = client.children

    async def counted(path: str, *, watch: bool = False) -> Any:
        listed.append(path)
        return await real(path, watch=watch)

    client.children = counted  # type: ignore[method-assign]
    listing = await driver.members(services)
    assert len(listed) == 2, listed
    assert [listing[s.key] for s in services] == [True] * 5 + [False, False]
    listed.clear()
    for s in services:
        one = await driver.members([s])
        assert one == {s.key: listing[s.key]}, s
    assert listed == [], "a single service was answered with get_children"


async def test_a_single_read_cancelled_in_flight_drops_its_replies(driver: ZooKeeperDriver) -> None:
    """A verdict's deadline can cancel the two pipelined reads after they were written:
    their replies are dropped (no error left unretrieved), and the session serves on."""
    held, missing = svc(host="held"), svc(host="missing")
    await driver.join(held)
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    try:
        for _ in range(5):
            with anyio.CancelScope() as scope:
                scope.cancel()  # delivered at the first wait: after both requests are written
                await driver.members([missing])
            assert scope.cancelled_caught
        # Replies come in order: this answer means the cancelled ones were read.
        assert await driver.members([held]) == {held.key: True}
        assert await driver.members([missing]) == {missing.key: False}
        gc.collect()
    finally:
        loop.set_exception_handler(previous)
    assert unhandled == []
    assert driver.client.session.conn.pending == {}


async def test_node_of_a_dead_session_does_not_block_rejoin(sg_zookeeper_url: str) -> None:
    """A node left by another session (our previous, killed incarnation) is taken over."""
    s = svc()
    old = ZooKeeperDriver.from_url(sg_zookeeper_url, Timings(driver_timeout=3))
    new = ZooKeeperDriver.from_url(sg_zookeeper_url, Timings(driver_timeout=3))
    await old.open()
    await new.open()
    try:
        await old.join(s)
        await new.join(s)
        _, stat = await new.client.raw.get(new.member_path(s))
        assert stat.ephemeral_owner == new.session_id
        assert new.session_id != old.session_id
        assert await new.members([s]) == {s.key: True}
    finally:
        await old.close()
        await new.close()


async def test_unreachable_zookeeper_is_unknown_never_up(tmp_path: Path) -> None:
    url = f"zookeeper://127.0.0.1:{free_port()}/sg?session_timeout=2"
    async with ServiceGroup.from_urls(
        f"sqlite://{tmp_path}/s.db", url, report_interval=0.5, service_down_time=5, driver_timeout=0.5
    ) as group:
        await group.store.register(Member("host-1", "sg-compute", "compute", 1))
        await group.store.beat(ServiceKey("host-1", "sg-compute"))
        status = await group.get("host-1", "sg-compute")
        assert (status.verdict.state, status.verdict.reason) == ("unknown", "driver_unreachable")
        assert not status.is_up
        with pytest.raises(BackendUnavailable):
            await group.driver.members([status.service])
        with pytest.raises(BackendUnavailable, match="ping: not connected"):
            await group.driver.ping()
        # Not None ("no live service"): an upgrade gate must not pass on an unknown.
        with pytest.raises(BackendUnavailable, match="min_version"):
            await group.min_version("sg-compute", only_up=True)
        assert await group.min_version("sg-compute") == 1


async def test_ping_round_trips_and_fails_fast_when_the_server_is_down() -> None:
    """With the server stopped, ping raises at once naming the servers, well before the
    caller's deadline (aiozk alone would wait for a connection until the deadline)."""
    deadline = 3.0
    with start_zookeeper() as server:
        driver = ZooKeeperDriver.from_url(server.url("ping", session_timeout=2), Timings(driver_timeout=3))
        await driver.open()
        try:
            client = driver.client.raw
            sent = client.session.xid
            with anyio.fail_after(deadline):
                await driver.ping()
            assert client.session.xid > sent  # a request went to the server
            server.stop()
            await eventually(lambda: current(lambda: driver.connected), lambda c: not c, 5, "disconnected")
            started = time.monotonic()
            with pytest.raises(BackendUnavailable, match=rf"ping: not connected to {server.hosts}"):
                with anyio.fail_after(deadline):
                    await driver.ping()
            took = time.monotonic() - started
            print(f"zookeeper ping with the server down failed in {took:.3f}s")
            # Fail fast: a small fraction of the deadline, with room for a loaded machine.
            assert took < deadline / 3, took
        finally:
            await driver.close()


async def test_min_version_only_up_needs_the_zookeeper_member(store_url: str, sg_zookeeper_url: str) -> None:
    """A fresh record whose ZooKeeper member is gone is not up: its version must not hold
    back ``min_version(only_up=True)`` (the store alone would count it)."""

    def group() -> ServiceGroup:
        return ServiceGroup.from_urls(
            store_url,
            sg_zookeeper_url,
            report_interval=REPORT_INTERVAL,
            service_down_time=SERVICE_DOWN_TIME,
            driver_timeout=3.0,
        )

    async with group() as reader, group() as lost:
        for g, host, version in ((lost, "old", 3), (reader, "new", 5)):
            hb = g.heartbeat(Member(host, "sg-compute", "compute", version))
            assert await hb.beat_once(), hb.stats.last_error
        assert await reader.min_version("sg-compute", only_up=True) == 3
        # The old service's session ends (its agent cut off from ZooKeeper): the member
        # goes, while the record stays fresh for up to SERVICE_DOWN_TIME.
        await lost.driver.close()
        status, _ = await eventually(
            lambda: reader.get("old", "sg-compute"),
            lambda s: s.verdict.reason == "not_joined",
            5,
            "member gone",
        )
        assert status.service.age is not None
        assert abs(status.service.age) < SERVICE_DOWN_TIME, "the record is still fresh"
        assert await reader.min_version("sg-compute", only_up=True) == 5
        assert await reader.min_version("sg-compute") == 3


async def test_forced_session_expiry_recovers_20_times(tmp_path: Path, sg_zookeeper: ZooKeeperServer) -> None:
    """Another client attaches to the live session and closes it: each time the node is
    back, and the service up, within one beat of the new session."""
    url = sg_zookeeper.url(f"expiry-{time.monotonic_ns()}", session_timeout=2)
    async with group_for(tmp_path, url) as agent, group_for(tmp_path, url) as reader:
        zk = agent.driver
        assert isinstance(zk, ZooKeeperDriver)
        async with agent.join("sg-compute", "compute", host="host-1") as hb:
            assert (await reader.get("host-1", "sg-compute")).is_up
            recoveries = []
            for trial in range(20):
                session = zk.client.session
                assert session is not None
                before = zk.sessions
                old_id = zk.session_id
                assert old_id is not None
                assert session_password(old_id) == session.password
                await expire(sg_zookeeper.hosts, old_id, session.password)
                await eventually(
                    lambda: current(lambda: zk.sessions),
                    lambda n, before=before: n > before,
                    5,
                    f"new session #{trial}",
                )
                assert zk.session_id != old_id
                renewed = time.monotonic()
                await eventually(
                    lambda: reader.get("host-1", "sg-compute"),
                    lambda st: st.is_up,
                    REPORT_INTERVAL + 0.5,
                    f"up again after expiry #{trial}",
                )
                recoveries.append(time.monotonic() - renewed)
                _, stat = await zk.client.raw.get(zk.member_path(hb.member))
                assert stat.ephemeral_owner == zk.session_id
                # Counted once by the driver, and once by the heartbeat on its next beat.
                assert zk.rejoins == trial + 1
                await eventually(
                    lambda: current(lambda: hb.stats.rejoins),
                    lambda n: n == trial + 1,  # noqa: B023 - awaited within the iteration
                    REPORT_INTERVAL + 1,
                    "the beat counts the re-join",
                )
            assert len(recoveries) == 20
            assert max(recoveries) <= REPORT_INTERVAL + 0.5
            assert hb.stats.rejoins == 20


async def test_watch_is_pushed_join_and_leave_within_1s(tmp_path: Path, sg_zookeeper_url: str) -> None:
    """The watch's poll interval is 30 s here: only ZooKeeper's push can deliver in 1 s."""
    events: list[tuple[float, ServiceEvent]] = []
    got = anyio.Event()

    async def watcher(group: ServiceGroup) -> None:
        async for event in group.watch(topic="compute", interval=30):
            events.append((time.monotonic(), event))
            got.set()

    async with (
        group_for(tmp_path, sg_zookeeper_url) as watching,
        group_for(tmp_path, sg_zookeeper_url) as other,
        anyio.create_task_group() as tg,
    ):
        listed = anyio.Event()
        real_list = watching.list

        async def list_and_tell(**kwargs: Any) -> list[ServiceStatus]:
            result = await real_list(**kwargs)
            listed.set()
            return result

        watching.list = list_and_tell  # type: ignore[method-assign]
        tg.start_soon(watcher, watching)
        # Wait for the watcher's first (empty) listing; from then on a join is pushed.
        with anyio.fail_after(5):
            await listed.wait()
        assert events == []
        joined = time.monotonic()
        async with other.join("sg-compute", "compute", host="host-1"):
            (at, first), _ = await eventually(
                lambda: current(lambda: events[-1] if events else None),
                lambda e: e is not None and e[1].status.is_up,
                1.0,
                "join reaches the watcher",
            )
            assert first.status.service.host == "host-1"
            assert at - joined <= 1.0
            left = time.monotonic()
        (at, last), _ = await eventually(
            lambda: current(lambda: events[-1]),
            lambda e: e[1].status.verdict.state == "down",
            1.0,
            "leave reaches the watcher",
        )
        assert last.previous == "up"
        assert last.status.verdict.reason == "left"
        assert at - left <= 1.0
        tg.cancel_scope.cancel()


async def test_digest_acl_only_creator_may_change_anyone_may_read(sg_zookeeper: ZooKeeperServer) -> None:
    chroot = f"acl-{time.monotonic_ns()}"
    secret = "hunter2-secret"
    s = svc()
    owner = ZooKeeperDriver.from_url(
        sg_zookeeper.url(chroot, session_timeout=2, auth=f"digest:sg:{secret}"), Timings(driver_timeout=3)
    )
    intruder = ZooKeeperDriver.from_url(
        sg_zookeeper.url(chroot, session_timeout=2, auth="digest:sg:wrong"), Timings(driver_timeout=3)
    )
    anonymous = ZKClient(sg_zookeeper.hosts, session_timeout=2)
    with structlog.testing.capture_logs() as logs:
        await owner.open()
        await intruder.open()
        await anonymous.start()
        try:
            await owner.join(s)
            path = owner.member_path(s)
            # Anyone may read.
            assert await anonymous.get_children(owner.topic_path("compute")) == [member_name(s.key)]
            data, _ = await anonymous.get(path)
            assert b"host-1" in data
            assert await intruder.members([s]) == {s.key: True}
            # Only the creator may delete or change it.
            with pytest.raises(zkexc.NoAuth):
                await anonymous.delete(path, force=True)
            with pytest.raises(zkexc.NoAuth):
                await anonymous.set_data(path, b"x", force=True)
            with pytest.raises(BackendUnavailable, match="not authorised"):
                await intruder.leave(s)
            assert await owner.members([s]) == {s.key: True}
            await owner.leave(s)
            assert await anonymous.get_children(owner.topic_path("compute")) == []
        finally:
            await anonymous.close()
            await intruder.close()
            await owner.close()
    assert secret not in repr(logs)


async def test_a_member_missing_right_after_a_reconnection_reads_recovering(tmp_path: Path) -> None:
    """The reader's own reconnection says the ensemble was disrupted: a member missing
    then, whose record last beat before it, is recovering for one window; the first
    connection is no such evidence, and after the window it is down."""
    interval, down = 2.0, 6.0
    with start_zookeeper() as server:
        url = server.url("recovering", session_timeout=4)
        store = f"sqlite://{tmp_path}/s.db"
        async with ServiceGroup.from_urls(
            store, url, report_interval=interval, service_down_time=down
        ) as reader:
            async with ServiceGroup.from_urls(
                store, url, report_interval=interval, service_down_time=down
            ) as agent:
                assert await agent.heartbeat(Member("h1", "sg-compute", "compute")).beat_once()
            # The agent's session closed: its node is gone, its record fresh.
            first = await reader.get("h1", "sg-compute")
            assert (first.verdict.state, first.verdict.reason) == ("down", "not_joined")
            server.stop()
            server.start()
            driver = reader.driver
            assert isinstance(driver, ZooKeeperDriver)
            await eventually(
                lambda: current(lambda: driver.reconnected_at), lambda t: t > float("-inf"), 10, "reconnected"
            )
            status = await reader.get("h1", "sg-compute")
            since = time.monotonic() - driver.reconnected_at
            assert since < interval * 1.5, f"the read came {since:.2f}s after the reconnection"
            assert (status.verdict.state, status.verdict.reason) == ("unknown", "driver_recovering")
            await eventually(
                lambda: reader.get("h1", "sg-compute"),
                lambda s: (s.verdict.state, s.verdict.reason) == ("down", "not_joined"),
                interval * 1.5 + 2.0,
                "down after the window",
            )


# -- reconnect backoff (issue 10, defect 1) ------------------------------------------------


async def test_reconnects_after_more_than_1024_failed_attempts() -> None:
    """aiozk's repair loop calls our find_server; an uncapped ``0.05 * 2**attempt``
    raised OverflowError at attempt 1,024 and the session never came back."""
    with start_zookeeper() as server:
        driver = ZooKeeperDriver.from_url(
            server.url("backoff", session_timeout=2, reconnect_max=0.002), Timings(driver_timeout=3)
        )
        await driver.open()
        try:
            session = driver.client.session
            attempts = 0
            connect = session.make_connection

            async def counted(host: str, port: str | int) -> Any:
                nonlocal attempts
                attempts += 1
                return await connect(host, port)

            session.make_connection = counted
            server.stop()
            await eventually(lambda: current(lambda: attempts), lambda n: n > 1100, 60, "1,100 attempts")
            server.start()
            await eventually(lambda: current(lambda: driver.connected), bool, 30, "reconnected")
            with anyio.fail_after(3):
                await driver.ping()
        finally:
            await driver.close()


@pytest.mark.parametrize("name", ["🚀", "a\U00010000b", "\U0010fffd" * 3])
def test_names_above_the_bmp_are_encoded(name: str) -> None:
    """ZooKeeper validates UTF-16 chars: a supplementary character is a surrogate pair
    there and refused (issue 10, defect 2)."""
    encoded = encode_name(name)
    assert all(ord(ch) <= 0xFFFF for ch in encoded), encoded
    assert decode_name(encoded) == name


async def test_a_topic_the_reader_may_not_read_is_unknown_the_rest_true(
    tmp_path: Path, sg_zookeeper: ZooKeeperServer
) -> None:
    """A digest ACL on one topic made the listing raise a raw ExceptionGroup (issue 10,
    defect 6): /v1/services and /metrics answered 500, sgctl printed a traceback."""
    from aiozk import ACL

    chroot = f"unreadable-{time.monotonic_ns()}"
    owner = ZooKeeperDriver.from_url(
        sg_zookeeper.url(chroot, session_timeout=2, auth="digest:sg:owner-secret"), Timings(driver_timeout=3)
    )
    readable, locked = Member("h1", "sg-a", "open"), Member("h2", "sg-b", "locked")
    await owner.open()
    try:
        async with ServiceGroup.from_urls(
            f"sqlite://{tmp_path}/s.db",
            sg_zookeeper.url(chroot, session_timeout=2),
            report_interval=REPORT_INTERVAL,
            service_down_time=SERVICE_DOWN_TIME,
            driver_timeout=3.0,
        ) as reader:
            for member in (readable, locked):
                await reader.store.register(member)
                await reader.store.beat(member.key)
                await owner.join(member)
            assert owner.options.auth is not None
            only_owner = [ACL.make("digest", owner.options.auth.acl_id, True, True, True, True, True)]
            await owner.client.raw.set_acl(owner.topic_path("locked"), only_owner, force=True)
            by_host = {s.service.host: s.verdict for s in await reader.list()}
            assert (by_host["h1"].state, by_host["h1"].reason) == ("up", "ok")
            assert (by_host["h2"].state, by_host["h2"].reason) == ("unknown", "driver_unreachable")
            verdict = await reader.verdict(locked)
            assert (verdict.state, verdict.reason) == ("unknown", "driver_unreachable")
            assert "not authorised" in (verdict.detail or "")
    finally:
        await owner.close()
