"""A memcached pool change by reload: one of three servers leaves the URL. Agents move
host by host (SIGHUP); their members move by rendezvous hashing to the remaining two;
a reader that knows both pools (the new URL, the old one in roll_drivers) never reads a
live service down, and the removed server can then stop."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import anyio

from sg import ServiceGroup, Settings, Timings
from sg.model import ServiceKey
from sg.testing.memcached import MemcachedServer
from sg.testing.plugin import memcached_url
from sg.testing.sampler import VerdictSampler
from tests.support.daemon_harness import AgentProcess, agent_config
from tests.support.waiting import eventually

INTERVAL = 0.5
DOWN = 3.0
AGENTS = 6


def config(tmp_path: Path, store: str, driver: str, i: int) -> Path:
    return agent_config(
        tmp_path / f"agent{i}.toml",
        store,
        [{"binary": "sg-cache", "topic": "cache", "host": f"m{i}"}],
        driver=driver,
        report_interval=INTERVAL,
        service_down_time=DOWN,
    )


async def test_a_server_removed_by_reload_moves_members_with_no_false_down(
    tmp_path: Path, sg_memcached_factory: Callable[..., list[MemcachedServer]]
) -> None:
    servers = sg_memcached_factory(3)
    old = memcached_url(servers, prefix="pool")
    new = memcached_url(servers[:2], prefix="pool")
    store = f"sqlite://{tmp_path}/services.db"
    agents = [
        AgentProcess(config(tmp_path, store, old, i), tmp_path / f"a{i}.log", None) for i in range(AGENTS)
    ]
    keys = [ServiceKey(f"m{i}", "sg-cache") for i in range(AGENTS)]
    try:
        timings = Timings(report_interval=INTERVAL, service_down_time=DOWN)
        reader = ServiceGroup.from_settings(Settings(store, new, roll_drivers=(old,), timings=timings))
        async with reader, anyio.create_task_group() as tg:
            await eventually(
                lambda: reader.list(), lambda s: len(s) == AGENTS and all(x.is_up for x in s), 20, "all up"
            )
            sampler = VerdictSampler(reader, interval=0.1, expected=keys)
            await tg.start(sampler.run)
            for i in range(AGENTS):
                config(tmp_path, store, new, i)
                agents[i].signal(signal.SIGHUP)
                await agents[i].wait_for_event("driver_switched", timeout=15)
            # Nothing is on the removed server any more: it may go.
            servers[2].stop()
            await anyio.sleep(2 * INTERVAL)  # two more beats of reads with it gone (not a sync)
            tg.cancel_scope.cancel()
        tally = sampler.tally()
        assert sampler.unexpected_errors() == []
        assert tally.false_down == 0, tally.reasons
        # Not even unknown: a pool change loses no member (leaving the old pool's member
        # would delete the key both pools share on the servers that stay).
        assert tally.unknown == 0, tally.reasons
        assert tally.up > 0
        print(f"pool change: {tally.samples} reads, reasons {dict(tally.reasons)}")
    finally:
        for agent in agents:
            agent.kill()
