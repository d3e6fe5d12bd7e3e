"""A real ``sg-agent`` on the memcached driver: kill -9, SIGTERM, memcached restarts, sgctl delete."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from sg import ServiceGroup
from sg.errors import NotFound
from sg.testing.memcached import MemcachedServer
from sg.testing.plugin import memcached_url
from tests.support.processes import agent, sgctl, write_config
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

Factory = Callable[..., list[MemcachedServer]]
HOST, BINARY = "h1", "sg-e2e"


class Setup:
    """An agent config and a reader group sharing one SQLite store and one driver URL."""

    def __init__(self, tmp_path: Path, driver: str, report_interval: float, down_time: float) -> None:
        self.store = f"sqlite://{tmp_path}/services.db"
        self.driver = driver
        self.report_interval = report_interval
        self.down_time = down_time
        self.config = write_config(
            tmp_path / "sg.toml",
            self.store,
            driver,
            report_interval=report_interval,
            service_down_time=down_time,
        )
        self.log = tmp_path / "agent.log"

    def reader(self) -> ServiceGroup:
        return ServiceGroup.from_urls(
            self.store, self.driver, report_interval=self.report_interval, service_down_time=self.down_time
        )

    def events(self, name: str) -> list[dict[str, object]]:
        found = []
        for line in self.log.read_text().splitlines():
            if line.startswith("{"):
                event = json.loads(line)
                if event.get("event") == name:
                    found.append(event)
        return found


async def probe_state(reader: ServiceGroup) -> str:
    try:
        return (await reader.get(HOST, BINARY)).verdict.state
    except NotFound:
        return "absent"


async def wait_up(reader: ServiceGroup, timeout: float = 20) -> float:
    _, took = await eventually(
        lambda: probe_state(reader), lambda s: s == "up", timeout, "agent's service up"
    )
    return took


@pytest.fixture
async def setup_3s(tmp_path: Path, sg_memcached_url: str) -> AsyncIterator[tuple[Setup, ServiceGroup]]:
    """Report every 1 s, down after 3 s: the member key expires with 3 s."""
    setup = Setup(tmp_path, sg_memcached_url, report_interval=1.0, down_time=3.0)
    async with setup.reader() as reader:
        yield setup, reader


async def test_kill_9_is_down_not_joined_within_ttl_plus_1s(setup_3s: tuple[Setup, ServiceGroup]) -> None:
    setup, reader = setup_3s
    assert reader.driver.ttl == 3  # type: ignore[attr-defined]
    with agent(setup.config, setup.log) as proc:
        await wait_up(reader)
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        status, took = await eventually(
            lambda: reader.get(HOST, BINARY),
            lambda s: not s.is_up,
            3 + 1,
            "down after kill -9",
            interval=0.01,
        )
    # The key expired before the record went stale: the driver saw the death first.
    assert (status.verdict.state, status.verdict.reason) == ("down", "not_joined")
    assert status.verdict.driver_seen is False
    assert took <= 3 + 1


async def test_sigterm_is_down_within_1s_and_deletes_the_key(setup_3s: tuple[Setup, ServiceGroup]) -> None:
    setup, reader = setup_3s
    with agent(setup.config, setup.log) as proc:
        await wait_up(reader)
        member = (await reader.get(HOST, BINARY)).service
        proc.send_signal(signal.SIGTERM)
        status, took = await eventually(
            lambda: reader.get(HOST, BINARY), lambda s: not s.is_up, 1.0, "down after SIGTERM", interval=0.01
        )
        assert proc.wait(5) == 0
    assert took <= 1.0
    # Leaving marks the record before it deletes the key, waiting for the store at most
    # LEAVE_ORDER_GRACE: on a loaded machine a slower SQLite write may let a reader see
    # not_joined first (the ordering itself: tests/contract/test_contract.py). The
    # record reads left within the store's deadline either way.
    assert status.verdict.reason in ("left", "not_joined")
    status, _ = await eventually(
        lambda: reader.get(HOST, BINARY),
        lambda s: s.verdict.reason == "left",
        reader.timings.store_timeout,
        "the record marked left",
    )
    assert (status.verdict.state, status.verdict.reason) == ("down", "left")
    assert (await reader.driver.members([member]))[member.key] is False


async def test_memcached_restart_under_a_live_agent_is_up_within_one_beat(
    tmp_path: Path, sg_memcached_factory: Factory
) -> None:
    (server,) = sg_memcached_factory(1)
    setup = Setup(tmp_path, memcached_url([server]), report_interval=1.0, down_time=2.5)

    async def rejoins() -> int:
        return len(setup.events("service_rejoined"))

    async with setup.reader() as reader:
        with agent(setup.config, setup.log) as proc:
            await wait_up(reader)
            for restart in range(1, 3):
                server.restart()
                restarted = time.monotonic()
                await wait_up(reader, timeout=5)
                took = time.monotonic() - restarted
                print(f"memcached restart {restart}: up again after {took:.3f}s")
                # One beat (at most the interval) plus slack well short of a second beat.
                assert took <= setup.report_interval + 0.6, took
                assert proc.poll() is None
                # Logged once per restart, not once per beat.
                await eventually(
                    rejoins,
                    lambda n, r=restart: n == r,
                    2,
                    "one re-join logged per restart",
                )
            # No further re-join: let two more beats land (each counts in the record),
            # then the count must still be 2. (Waiting for "n == 2" held at once.)
            base = (await reader.get(HOST, BINARY)).service.report_count
            await eventually(
                lambda: reader.get(HOST, BINARY),
                lambda s: s.service.report_count >= base + 2,
                2 * setup.report_interval + 2.0,  # two beats, 2 s of margin for a loaded machine
                "two more beats",
            )
            assert await rejoins() == 2, "a re-join logged after the member was back"
            assert {e["backend"] for e in setup.events("service_rejoined")} == {"memcached"}
            assert proc.poll() is None
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(5) == 0


async def test_sgctl_delete_removes_another_hosts_key(tmp_path: Path, sg_memcached_url: str) -> None:
    # Long down time: the dead agent's key would otherwise outlive the test.
    setup = Setup(tmp_path, sg_memcached_url, report_interval=2.0, down_time=30.0)
    async with setup.reader() as reader:
        with agent(setup.config, setup.log) as proc:
            await wait_up(reader)
            proc.send_signal(signal.SIGKILL)
            proc.wait(5)
        member = (await reader.get(HOST, BINARY)).service
        assert (await reader.driver.members([member]))[member.key] is True

        refused = sgctl("service", "delete", HOST, BINARY, config=setup.config)
        assert refused.returncode == 1
        assert "is up" in refused.stderr
        assert sgctl("service", "force-down", HOST, BINARY, config=setup.config).returncode == 0
        done = sgctl("service", "delete", HOST, BINARY, config=setup.config)
        assert done.returncode == 0, done.stderr

        assert (await reader.driver.members([member]))[member.key] is False
        with pytest.raises(NotFound):
            await reader.get(HOST, BINARY)
