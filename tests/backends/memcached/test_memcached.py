"""The memcached driver against real memcached servers: names, batching, outages, restarts."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, suppress
from pathlib import Path

import aiomcache
import anyio
import pytest

from sg import ServiceGroup
from sg.drivers.memcached import MemcachedDriver
from sg.errors import BackendTimeout, BackendUnavailable
from sg.guard import Guard
from sg.heartbeat import Heartbeat
from sg.model import Member, Service, ServiceStatus
from sg.testing.memcached import MemcachedServer
from sg.testing.plugin import memcached_url
from sg.timings import Timings
from tests.support.waiting import eventually

REPORT_INTERVAL = 1.0
DOWN_TIME = 2.5

Factory = Callable[..., list[MemcachedServer]]


def driver_for(servers: list[MemcachedServer]) -> MemcachedDriver:
    return MemcachedDriver.from_url(
        memcached_url(servers), Timings(report_interval=REPORT_INTERVAL, service_down_time=DOWN_TIME)
    )


@pytest.fixture
async def group3(tmp_path: Path, sg_memcached3_url: str) -> AsyncIterator[ServiceGroup]:
    async with ServiceGroup.from_urls(
        f"sqlite://{tmp_path}/services.db",
        sg_memcached3_url,
        report_interval=REPORT_INTERVAL,
        service_down_time=DOWN_TIME,
    ) as group:
        yield group


def states(statuses: list[ServiceStatus]) -> dict[tuple[str, str], tuple[str, str]]:
    return {s.service.key: (s.verdict.state, s.verdict.reason) for s in statuses}


#: Names the model accepts that a naive key scheme would mangle or merge.
ODD_NAMES = [
    "a b",
    "a  b",
    "a_b",
    "a:b",
    "a%3Ab",
    "a/b",
    "..",
    "a\u00a0b",
    "h\u00f4te",
    "\u30db\u30b9\u30c8",
    "\U0001f600",
    "h" * 255,
    "h" * 254 + "i",
]


async def test_odd_names_join_list_and_leave_separately(group3: ServiceGroup) -> None:
    async with AsyncExitStack() as stack:
        beats = [await stack.enter_async_context(group3.join("sg-odd", "odd", host=n)) for n in ODD_NAMES]
        keys = {group3.driver.placement(hb.member)[1] for hb in beats}  # type: ignore[attr-defined]
        assert len(keys) == len(ODD_NAMES)
        servers = {group3.driver.placement(hb.member)[0] for hb in beats}  # type: ignore[attr-defined]
        assert len(servers) >= 2  # placement depends on the random ports

        statuses, _ = await eventually(
            group3.list, lambda ss: len(ss) == len(ODD_NAMES) and all(s.is_up for s in ss), 10, "all up"
        )
        assert sorted(s.service.host for s in statuses) == sorted(ODD_NAMES)

        await group3.leave(beats[0].member)
        after = states(await group3.list())
        assert after[beats[0].key] == ("down", "left")
        assert all(after[hb.key] == ("up", "ok") for hb in beats[1:])
        membership = await group3.driver.members([hb.member for hb in beats])
        assert membership[beats[0].key] is False
        assert all(membership[hb.key] is True for hb in beats[1:])


async def test_listing_10000_members_is_one_request_per_server(
    tmp_path: Path, sg_memcached_factory: Factory
) -> None:
    servers = sg_memcached_factory(3, verbose=True)
    async with ServiceGroup.from_urls(
        f"sqlite://{tmp_path}/services.db",
        memcached_url(servers),
        # Long enough that no record goes stale while 10,000 are registered.
        report_interval=10,
        service_down_time=60,
        store_timeout=60,
        driver_timeout=10,
        # Half the topic never joins on purpose: not a fleet event for this test.
        guard=Guard(share=0.9),
    ) as group:
        driver: MemcachedDriver = group.driver  # type: ignore[assignment]
        members = []
        for i in range(10_000):
            members.append(await group.store.register(Member(f"host-{i:05d}", "sg-big", "big", 1)))
            await group.store.beat(members[-1].key)
        # Every other member holds its key, so the answer is checked, not just counted.
        async with anyio.create_task_group() as tg:
            for part in range(8):
                tg.start_soon(_join_all, driver, members[part * 2 :: 16])

        before_driver = dict(driver.requests)
        before_server = [s.request_lines("get") for s in servers]
        statuses = await group.list()
        after_server = [s.request_lines("get") for s in servers]

        assert len(statuses) == 10_000
        up = {s.service.host for s in statuses if s.is_up}
        assert up == {m.host for m in members[::2]}
        # Not held: not_joined, or (for records stamped within their server's first second,
        # which memcached's whole-second uptime cannot tell from before it) recovering.
        assert {s.verdict.reason for s in statuses if not s.is_up} <= {"not_joined", "driver_recovering"}
        assert [a - b for a, b in zip(after_server, before_server, strict=True)] == [1, 1, 1]
        # One get per server, and one stats per server (asked because keys are missing:
        # was the server restarted since those records last beat? It was not).
        assert {k: driver.requests[k] - before_driver[k] for k in driver.requests} == dict.fromkeys(
            driver.servers, 2
        )


async def _join_all(driver: MemcachedDriver, services: list[Service]) -> None:
    for service in services:
        await driver.join(service.member)


async def test_one_of_three_servers_down_makes_only_its_members_unknown(
    tmp_path: Path, sg_memcached_factory: Factory
) -> None:
    servers = sg_memcached_factory(3)
    async with (
        ServiceGroup.from_urls(
            f"sqlite://{tmp_path}/services.db",
            memcached_url(servers),
            report_interval=REPORT_INTERVAL,
            service_down_time=DOWN_TIME,
            driver_timeout=2,
        ) as group,
        AsyncExitStack() as stack,
    ):
        driver: MemcachedDriver = group.driver  # type: ignore[assignment]
        # Ports are random, so is placement: pick hosts until every server holds three.
        hosts: dict[int, list[str]] = {0: [], 1: [], 2: []}
        for i in range(1000):
            index = driver.placement(Service(host=f"h{i}", binary="sg-w", topic="w"))[0]
            if len(hosts[index]) < 3:
                hosts[index].append(f"h{i}")
        assert all(len(h) == 3 for h in hosts.values())
        chosen = [h for per_server in hosts.values() for h in per_server]
        beats = [await stack.enter_async_context(group.join("sg-w", "w", host=h)) for h in chosen]
        on = {hb.key: driver.placement(hb.member)[0] for hb in beats}
        await eventually(group.list, lambda ss: all(s.is_up for s in ss), 10, "all up")

        servers[1].stop()
        statuses = states(await group.list())
        for key, index in on.items():
            expected = ("unknown", "driver_unreachable") if index == 1 else ("up", "ok")
            assert statuses[key] == expected, (key, index)
        status = await group.get(*next(k for k, i in on.items() if i == 1))
        assert "memcached" in (status.verdict.detail or "")

        servers[1].start()
        returned = time.monotonic()
        await eventually(group.list, lambda ss: all(s.is_up for s in ss), 5, "all up again")
        # One beat (the interval, less jitter) plus the time to list.
        took = time.monotonic() - returned
        print(f"one of three servers back: all up after {took:.3f}s")
        # One beat (at most the interval) plus scheduling slack well short of a second beat.
        assert took <= REPORT_INTERVAL + 0.6, took
        assert sum(hb.stats.rejoins for hb in beats if on[hb.key] == 1) >= 1


async def test_every_server_down_raises_with_detail(sg_memcached_factory: Factory) -> None:
    (server,) = sg_memcached_factory(1)
    driver = driver_for([server])
    await driver.open()
    try:
        service = Member(host="h", binary="b", topic="t")
        await driver.join(service)
        server.stop()
        with pytest.raises(BackendUnavailable, match=rf"get on 127\.0\.0\.1:{server.port}"):
            await driver.members([service])
        with pytest.raises(BackendUnavailable, match="touch"):
            await driver.refresh(service)
    finally:
        await driver.close()


async def test_restart_loses_keys_and_refresh_rejoins_without_failing(sg_memcached_factory: Factory) -> None:
    (server,) = sg_memcached_factory(1)
    driver = driver_for([server])
    await driver.open()
    try:
        service = Member(host="h", binary="b", topic="t")
        await driver.join(service)
        assert await driver.refresh(service) is False
        for _ in range(2):
            server.restart()
            # The pooled connections are dead; no call may fail because of them.
            assert (await driver.members([service]))[service.key] is False
            assert await driver.refresh(service) is True
            assert await driver.refresh(service) is False
            assert (await driver.members([service]))[service.key] is True
        server.restart()
        await driver.leave(service)  # absent after the restart: not an error
    finally:
        await driver.close()


# -- servers that misbehave (real sockets on loopback) ---------------------------------------


@pytest.fixture
def rude_server() -> Iterator[Callable[[bool], int]]:
    """A TCP listener that reads a request and then hangs up, or never answers."""
    stop = threading.Event()
    listeners: list[socket.socket] = []
    held: list[socket.socket] = []

    def start(hang_up: bool) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.1)
        listeners.append(listener)

        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                conn.settimeout(5)
                with suppress(OSError):
                    conn.recv(4096)
                if hang_up:
                    conn.close()
                else:
                    held.append(conn)

        threading.Thread(target=serve, daemon=True).start()
        return int(listener.getsockname()[1])

    yield start
    stop.set()
    for sock in listeners + held:
        sock.close()


async def test_server_hanging_up_mid_reply_is_unavailable_not_a_hang(
    rude_server: Callable[[bool], int],
) -> None:
    port = rude_server(True)
    driver = MemcachedDriver.from_url(
        f"memcached://127.0.0.1:{port}", Timings(report_interval=0.2, service_down_time=1)
    )
    await driver.open()
    service = Member(host="h", binary="b", topic="t")
    try:
        # aiomcache 0.8.2 alone spins forever here (a one-line reply read at EOF).
        started = time.monotonic()
        for call in (driver.join, driver.refresh, driver.leave):
            with pytest.raises(BackendUnavailable) as info:
                await call(service)
            assert not isinstance(info.value, BackendTimeout)
        with pytest.raises(BackendUnavailable):
            await driver.members([service])
        assert time.monotonic() - started < 3
    finally:
        await driver.close()


async def test_server_that_never_answers_leaves_the_deadline_to_the_caller(
    rude_server: Callable[[bool], int],
) -> None:
    """The driver declares no deadline of its own: the caller's fires as TimeoutError
    (the caller maps it), and the interrupted connection is not reused."""
    port = rude_server(False)
    driver = MemcachedDriver.from_url(
        f"memcached://127.0.0.1:{port}", Timings(report_interval=0.2, service_down_time=1)
    )
    await driver.open()
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError), anyio.fail_after(0.3):
            await driver.refresh(Member(host="h", binary="b", topic="t"))
        assert time.monotonic() - started < 1.5
    finally:
        await driver.close()


async def test_member_never_lapses_between_beats_at_sub_second_down_time(
    tmp_path: Path, sg_memcached_url: str
) -> None:
    """memcached drops a key up to 1 s early; the TTL floor keeps a live member present.

    With a TTL of 1 s the key would vanish at every tick of memcached's clock, right
    after a beat. A miss is only excused when no driver refresh succeeded for over a
    second (a stalled, overloaded test machine), which no TTL can cover.
    """
    refreshed: list[float] = []

    def observe(hb: Heartbeat, ok: bool) -> None:
        if "driver" not in hb.stats.outages:
            refreshed.append(time.monotonic())

    async with (
        ServiceGroup.from_urls(
            f"sqlite://{tmp_path}/services.db", sg_memcached_url, report_interval=0.2, service_down_time=1.0
        ) as group,
        anyio.create_task_group() as tg,
    ):
        hb = group.heartbeat(Member(host="h", binary="sg-fast", topic="fast"), observer=observe)
        await tg.start(hb.run)
        await eventually(lambda: group.get("h", "sg-fast"), lambda s: s.is_up, 5, "up")
        deadline = time.monotonic() + 2.5  # spans at least two memcached clock ticks
        misses = []
        samples = 0
        while time.monotonic() < deadline:
            asked = time.monotonic()
            if not (await group.driver.members([hb.member]))[hb.key]:
                misses.append(asked)
            samples += 1
            await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    assert samples > 20
    unexplained = [t for t in misses if t - max((r for r in refreshed if r <= t), default=0.0) <= 1.0]
    assert unexplained == [], f"{len(unexplained)} of {samples} samples missed the key after a fresh beat"


async def test_membership_reply_parsing_survives_odd_values(sg_memcached: MemcachedServer) -> None:
    """The bulk reply parser must frame values by their length, not by their content."""
    driver = driver_for([sg_memcached])
    await driver.open()
    raw = aiomcache.Client("127.0.0.1", sg_memcached.port)
    try:
        services = [Member(host=f"h{i}", binary="b", topic="t") for i in range(6)]
        odd = [b"x\r\nEND\r\n", b"VALUE k 0 1\r\n", b"", b"\r\n", b"y" * 300_000]
        for service, value in zip(services, odd, strict=False):
            assert await raw.set(driver.placement(service)[1], value, exptime=60)
        membership = await driver.members(services)
        assert [membership[s.key] for s in services] == [True] * 5 + [False]
        assert await driver.refresh(services[0]) is False
    finally:
        await raw.close()
        await driver.close()


async def test_a_silent_server_costs_only_its_own_members(
    tmp_path: Path, sg_memcached: MemcachedServer, rude_server: Callable[[bool], int]
) -> None:
    """A server that accepts but never answers (a partition) must not take the others' answers
    down with it: the listing still returns before the group's driver deadline."""
    silent = rude_server(False)
    async with ServiceGroup.from_urls(
        f"sqlite://{tmp_path}/services.db",
        f"memcached://{sg_memcached.address},127.0.0.1:{silent}?prefix=silent",
        report_interval=REPORT_INTERVAL,
        service_down_time=DOWN_TIME,
        driver_timeout=0.5,
    ) as group:
        driver: MemcachedDriver = group.driver  # type: ignore[assignment]
        on: dict[int, Service] = {}
        for i in range(100):
            service = await group.store.register(Member(f"h{i}", "sg-p", "p", 1))
            on.setdefault(driver.placement(service)[0], service)
        await group.store.beat(on[0].key)
        await group.store.beat(on[1].key)
        await driver.join(on[0].member)
        started = time.monotonic()
        statuses = states(await group.list(topic="p"))  # one listing spanning both servers
        assert time.monotonic() - started < 0.5 + 0.5
        assert statuses[on[0].key] == ("up", "ok")
        assert statuses[on[1].key] == ("unknown", "driver_unreachable")
        with anyio.fail_after(0.5):  # the caller's deadline, shared out per server
            both = await driver.members([on[0], on[1]])
        assert both == {on[0].key: True, on[1].key: None}


# -- ping ---------------------------------------------------------------------------------


async def test_ping_names_the_one_of_two_servers_that_is_stopped(sg_memcached_factory: Factory) -> None:
    servers = sg_memcached_factory(2)
    driver = driver_for(servers)
    await driver.open()
    try:
        await driver.ping()
        assert driver.requests == dict.fromkeys(driver.servers, 1)  # one round trip to each
        servers[1].stop()
        with pytest.raises(BackendUnavailable, match="1 of 2 servers") as info:
            await driver.ping()
        assert f"version on {servers[1].address}" in str(info.value)
        assert servers[0].address not in str(info.value)
        servers[1].start()
        await driver.ping()
    finally:
        await driver.close()


async def test_ping_names_a_silent_server_within_the_callers_deadline(
    sg_memcached: MemcachedServer, rude_server: Callable[[bool], int]
) -> None:
    """A server that never answers is named (not a bare TimeoutError) before the
    caller's deadline: it gets only its share of it."""
    silent = rude_server(False)
    driver = MemcachedDriver.from_url(
        f"memcached://{sg_memcached.address},127.0.0.1:{silent}",
        Timings(report_interval=0.2, service_down_time=1),
    )
    await driver.open()
    try:
        with pytest.raises(BackendUnavailable, match=rf"version on 127\.0\.0\.1:{silent}: no answer") as info:
            with anyio.fail_after(0.5):
                await driver.ping()
        assert sg_memcached.address not in str(info.value)
    finally:
        await driver.close()


async def test_members_a_restart_lost_read_driver_recovering_then_down(
    tmp_path: Path, sg_memcached_factory: Factory
) -> None:
    """The reader asks a server its uptime when keys are missing: lost in a restart within
    the recovery window reads unknown/driver_recovering; later, a key still missing is a
    confident down/not_joined."""
    restarted, other = sg_memcached_factory(2)
    async with ServiceGroup.from_urls(
        f"sqlite://{tmp_path}/services.db",
        memcached_url([restarted, other]),
        report_interval=REPORT_INTERVAL,
        service_down_time=DOWN_TIME,
    ) as group:
        driver = group.driver
        assert isinstance(driver, MemcachedDriver)
        members: list[Member] = []
        for i in range(40):
            members.append(Member(f"h{i:02d}", "sg-compute", "compute"))
            placed = [driver.placement(m)[0] for m in members]
            if placed.count(0) >= 2 and placed.count(1) >= 2:
                break
        lost = [m for m in members if driver.placement(m)[0] == 0]
        kept = [m for m in members if driver.placement(m)[0] == 1]
        for m in members:
            assert await group.heartbeat(m).beat_once()
        restarted.restart()
        began = time.monotonic()
        got = {s.service.host: (s.verdict.state, s.verdict.reason) for s in await group.list()}
        if time.monotonic() - began < REPORT_INTERVAL * 1.5:
            assert {got[m.host] for m in lost} == {("unknown", "driver_recovering")}, got
        assert {got[m.host] for m in kept} == {("up", "ok")}, got
        # One beat writes the key again.
        assert await group.heartbeat(lost[0]).beat_once()
        assert (await group.verdict(lost[0])).state == "up"
        # The others never beat again: once the window is over they are plain down.
        await eventually(
            lambda: group.verdict(lost[1]),
            lambda v: (v.state, v.reason) == ("down", "not_joined"),
            REPORT_INTERVAL * 1.5 + 1.0,
            "down after the window",
        )
