"""Real ``sg-agent`` processes on the ZooKeeper driver: kill -9, SIGTERM, SIGSTOP,
and ZooKeeper outages. Verdicts are read with the library in the test process.

Tests that stop their ZooKeeper get a private server; the others share the
session's. Only processes started here are signalled, by their pid.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.lowlevel
import pytest

from sg import ServiceGroup
from sg.drivers.zookeeper import ZooKeeperDriver
from sg.model import ServiceKey, ServiceStatus
from sg.testing.plugin import start_zookeeper
from sg.testing.servers import stop_pid
from sg.testing.zookeeper import ZooKeeperServer, expire_session
from tests.support.processes import clean_env
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow
T = TypeVar("T")

REPORT_INTERVAL = 0.5
#: Long enough that the record never goes stale in these tests: every `down`
#: here must come from the driver (or a clean leave).
SERVICE_DOWN_TIME = 30.0
AGENT = Path(sys.executable).with_name("sg-agent")
HOST, BINARY = "agent-host", "sg-compute"


class AgentProcess:
    """An ``sg-agent`` child process with its own config file and log."""

    def __init__(self, tmp_path: Path, driver_url: str, name: str = "agent") -> None:
        self.store_url = f"sqlite://{tmp_path}/services.db"
        self.driver_url = driver_url
        self.config = tmp_path / f"{name}.toml"
        self.log = tmp_path / f"{name}.log"
        self.config.write_text(
            f'store = "{self.store_url}"\n'
            f'driver = "{driver_url}"\n'
            f"report_interval = {REPORT_INTERVAL}\n"
            f"service_down_time = {SERVICE_DOWN_TIME}\n"
            f"driver_timeout = 1.0\n"
            "[[service]]\n"
            f'host = "{HOST}"\nbinary = "{BINARY}"\ntopic = "compute"\n'
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(AGENT), "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=clean_env(),
            )
        return self

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGCONT)
            stop_pid(self.proc)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@contextlib.contextmanager
def running_agent(tmp_path: Path, driver_url: str) -> Iterator[AgentProcess]:
    agent = AgentProcess(tmp_path, driver_url).start()
    try:
        yield agent
    finally:
        agent.stop()


@contextlib.asynccontextmanager
async def reader(agent: AgentProcess, driver_timeout: float = 1.0) -> AsyncIterator[ServiceGroup]:
    async with ServiceGroup.from_urls(
        agent.store_url,
        agent.driver_url,
        report_interval=REPORT_INTERVAL,
        service_down_time=SERVICE_DOWN_TIME,
        driver_timeout=driver_timeout,
    ) as group:
        yield group


async def expire(hosts: str, session_id: int, password: bytes | None = None) -> None:
    """Expire the session (``expire_session`` retries when its owner re-attaches first)."""
    assert await expire_session(hosts, session_id, password), f"could not expire session {session_id:#x}"


async def current(read: Callable[[], T]) -> T:
    """A probe for ``eventually`` that reads a value in this process."""
    await anyio.lowlevel.checkpoint()
    return read()


async def status(group: ServiceGroup) -> ServiceStatus | None:
    from sg.errors import NotFound

    try:
        return await group.get(HOST, BINARY)
    except NotFound:
        return None


async def wait_up(group: ServiceGroup, agent: AgentProcess, timeout: float = 20) -> None:
    try:
        await eventually(lambda: status(group), lambda s: s is not None and s.is_up, timeout, "agent up")
    except AssertionError:
        raise AssertionError(f"agent never up; its log:\n{agent.tail()}") from None


@pytest.fixture
def private_zookeeper() -> Iterator[ZooKeeperServer]:
    """A ZooKeeper of the test's own, for tests that stop it."""
    server = start_zookeeper()
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize("session_timeout", [1.0, 4.0])
async def test_kill_9_is_down_within_session_timeout(
    tmp_path: Path, sg_zookeeper: ZooKeeperServer, session_timeout: float
) -> None:
    url = sg_zookeeper.url(f"kill-{time.monotonic_ns()}", session_timeout=session_timeout)
    with running_agent(tmp_path, url) as agent:
        async with reader(agent) as group:
            await wait_up(group, agent)
            agent.signal(signal.SIGKILL)
            killed = time.monotonic()
            final, took = await eventually(
                lambda: status(group), lambda s: s is not None and not s.is_up, session_timeout + 1, "down"
            )
            assert final is not None
            assert (final.verdict.state, final.verdict.reason) == ("down", "not_joined")
            # Not before the session could have expired (no false positive on kill).
            assert time.monotonic() - killed >= session_timeout * 0.5
            print(f"\nkill -9 detection at session_timeout={session_timeout:g}s: {took:.3f}s")


async def test_sigterm_is_down_within_1s(tmp_path: Path, sg_zookeeper: ZooKeeperServer) -> None:
    url = sg_zookeeper.url(f"term-{time.monotonic_ns()}", session_timeout=4)
    with running_agent(tmp_path, url) as agent:
        async with reader(agent) as group:
            await wait_up(group, agent)
            agent.signal(signal.SIGTERM)
            final, _ = await eventually(
                lambda: status(group), lambda s: s is not None and not s.is_up, 1.0, "down after SIGTERM"
            )
            assert final is not None
            assert final.verdict.state == "down"
            # The record is marked left before the node goes, but the node waits for the
            # store at most LEAVE_ORDER_GRACE: on a loaded machine whose SQLite write
            # took longer, a reader may see not_joined first (the ordering itself is
            # tested with a slow store in tests/contract/test_contract.py). Either way
            # the record reads left within the store's deadline.
            assert final.verdict.reason in ("left", "not_joined")
            final, _ = await eventually(
                lambda: status(group),
                lambda s: s is not None and s.verdict.reason == "left",
                group.timings.store_timeout,
                "the record marked left",
            )
            assert final is not None
            membership = await group.driver.members([final.service])
            assert membership[final.service.key] is False, "leave deleted the node at once"
            assert agent.proc is not None
            assert agent.proc.wait(5) == 0


async def test_sigstop_past_the_timeout_then_sigcont_rejoins(
    tmp_path: Path, sg_zookeeper: ZooKeeperServer
) -> None:
    url = sg_zookeeper.url(f"stop-{time.monotonic_ns()}", session_timeout=1)
    with running_agent(tmp_path, url) as agent:
        async with reader(agent) as group:
            await wait_up(group, agent)
            agent.signal(signal.SIGSTOP)
            expired, _ = await eventually(
                lambda: status(group), lambda s: s is not None and not s.is_up, 3, "session expired"
            )
            assert expired is not None
            assert expired.verdict.reason == "not_joined"
            agent.signal(signal.SIGCONT)
            _, took = await eventually(
                lambda: status(group), lambda s: s is not None and s.is_up, REPORT_INTERVAL + 1, "back up"
            )
            print(f"\nSIGCONT to up again: {took:.3f}s")
            # The re-join is logged once, on the beat after the new session.
            await eventually(
                lambda: current(agent.text),
                lambda log: "service_rejoined" in log,
                REPORT_INTERVAL + 1,
                "logged",
            )
            # Once: let two more beats land (each counts in the record), then count again.
            # (Counting right after the first line could not see a second one.)
            rejoined = await status(group)
            assert rejoined is not None
            await eventually(
                lambda: status(group),
                lambda s: s is not None and s.service.report_count >= rejoined.service.report_count + 2,
                2 * REPORT_INTERVAL + 2.0,  # two beats, 2 s of margin for a loaded machine
                "two more beats",
            )
            assert agent.text().count("service_rejoined") == 1


async def node_owner(group: ServiceGroup) -> int | None:
    """The session that owns the agent's node, or None if there is no node."""
    from aiozk import exc as zkexc

    driver = group.driver
    assert isinstance(driver, ZooKeeperDriver)
    s = await status(group)
    assert s is not None
    try:
        _, stat = await driver.client.raw.get(driver.member_path(s.service))
    except zkexc.NoNode:
        return None
    return int(stat.ephemeral_owner)


async def test_forced_session_expiry_of_a_live_agent_20_trials(
    tmp_path: Path, sg_zookeeper: ZooKeeperServer
) -> None:
    """Another client attaches to the agent's session (id from its node, password
    derived as ZooKeeper derives it) and closes it: every time, the node is back
    under a new session and the service up within one beat, and the re-join is
    logged once."""
    url = sg_zookeeper.url(f"expire-{time.monotonic_ns()}", session_timeout=2)
    with running_agent(tmp_path, url) as agent:
        async with reader(agent) as group:
            await wait_up(group, agent)
            took = []
            for trial in range(20):
                owner = await node_owner(group)
                assert owner is not None
                await expire(sg_zookeeper.hosts, owner)
                expired = time.monotonic()
                # Back within one beat: the bound is the interval plus the driver_timeout
                # (1 s) a beat may take, plus 1 s of margin for a loaded 2-core machine.
                bound = REPORT_INTERVAL + 1.0 + 1.0
                await eventually(
                    lambda: node_owner(group),
                    lambda o, old=owner: o is not None and o != old,
                    bound,
                    f"node back under a new session (trial {trial})",
                )
                await eventually(lambda: status(group), lambda s: s is not None and s.is_up, bound, "up")
                took.append(time.monotonic() - expired)
                await eventually(
                    lambda: current(agent.text),
                    lambda log, n=trial + 1: log.count("service_rejoined") == n,
                    bound,
                    f"re-join {trial + 1} logged once",
                )
            assert agent.proc is not None
            assert agent.proc.poll() is None
            print(f"\n20 forced expiries of sg-agent: all recovered, max {max(took):.3f}s to up")


async def _collect(group: ServiceGroup, until: anyio.Event, seen: list[tuple[float, str, str]]) -> None:
    while not until.is_set():
        s = await status(group)
        if s is not None:
            seen.append((time.monotonic(), s.verdict.state, s.verdict.reason))
        await anyio.sleep(0.05)


async def test_short_zookeeper_outage_never_reads_down(
    tmp_path: Path, private_zookeeper: ZooKeeperServer
) -> None:
    """ZooKeeper stopped for less than the session timeout: the session survives,
    so no verdict goes down; readers see unknown while it is away."""
    url = private_zookeeper.url("short", session_timeout=8)
    with running_agent(tmp_path, url) as agent:
        async with reader(agent, driver_timeout=0.5) as group:
            await wait_up(group, agent)
            seen: list[tuple[float, str, str]] = []
            done = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(_collect, group, done, seen)
                stopped = time.monotonic()
                private_zookeeper.stop()
                await eventually(
                    lambda: status(group),
                    lambda s: s is not None and s.verdict.state == "unknown",
                    3,
                    "unknown",
                )
                private_zookeeper.start()
                outage = time.monotonic() - stopped
                await wait_up(group, agent, timeout=8)
                done.set()
            assert outage < 8, f"the outage ({outage:.1f}s) must be shorter than the session"
            states = {state for _, state, _ in seen}
            assert "down" not in states, seen
            assert any(reason == "driver_unreachable" for _, _, reason in seen)
            assert agent.proc is not None
            assert agent.proc.poll() is None


async def test_long_zookeeper_outage_agent_survives_and_rejoins(
    tmp_path: Path, private_zookeeper: ZooKeeperServer
) -> None:
    """ZooKeeper stopped for longer than the session timeout: the agent keeps running,
    readers get unknown, and the node is back within one beat of ZooKeeper's return."""
    url = private_zookeeper.url("long", session_timeout=1)
    with running_agent(tmp_path, url) as agent:
        async with reader(agent, driver_timeout=0.5) as group:
            await wait_up(group, agent)
            private_zookeeper.stop()
            stopped = time.monotonic()
            seen: list[tuple[float, str, str]] = []
            done = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(_collect, group, done, seen)
                await anyio.sleep(3.0)  # the outage itself, longer than the 1 s session
                done.set()
            assert time.monotonic() - stopped > 1.0
            assert seen
            # Give the reader half a second to see the socket close; from then on, unknown.
            during = {(state, reason) for at, state, reason in seen if at > stopped + 0.5}
            assert during == {("unknown", "driver_unreachable")}
            assert agent.proc is not None
            assert agent.proc.poll() is None, "the agent must outlive a ZooKeeper outage"
            private_zookeeper.start()
            back = time.monotonic()
            await wait_up(group, agent, timeout=REPORT_INTERVAL + 2)
            took = time.monotonic() - back
            print(f"\nZooKeeper back to agent up: {took:.3f}s")
            assert took <= REPORT_INTERVAL + 1.0
            assert agent.proc.poll() is None


async def test_sgctl_watch_prints_transitions(tmp_path: Path, sg_zookeeper: ZooKeeperServer) -> None:
    url = sg_zookeeper.url(f"cli-{time.monotonic_ns()}", session_timeout=2)
    store = f"sqlite://{tmp_path}/services.db"
    sgctl = Path(sys.executable).with_name("sgctl")
    env = {**clean_env(), "SG_REPORT_INTERVAL": "0.4", "SG_SERVICE_DOWN_TIME": "30"}
    watcher = subprocess.Popen(
        [str(sgctl), "--store", store, "--driver", url, "service", "watch", "--topic", "compute"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    assert watcher.stdout is not None
    out = watcher.stdout

    async def line_with(text: bytes) -> str:
        # The watch prints one line per change; read until the expected one.
        with anyio.fail_after(10):
            line = await anyio.to_thread.run_sync(out.readline)
            while text not in line and line:
                line = await anyio.to_thread.run_sync(out.readline)
        assert text in line, f"the watch ended before {text!r}"
        return line.decode()

    try:
        async with ServiceGroup.from_urls(
            store, url, report_interval=REPORT_INTERVAL, service_down_time=SERVICE_DOWN_TIME
        ) as group:
            async with group.join(BINARY, "compute", host=HOST):
                line = await line_with(b"-> up")
                assert line.startswith(f"{HOST} {BINARY} compute "), line
                assert "-> up (ok)" in line
            # A clean stop, then the record deleted: a down line, then a removal.
            line = await line_with(b"-> down")
            assert line == f"{HOST} {BINARY} compute up -> down (left)\n", line
            await group.delete(ServiceKey(HOST, BINARY))
            line = await line_with(b"-> removed")
            assert line == f"{HOST} {BINARY} compute down -> removed (left)\n", line
    finally:
        stop_pid(watcher)
