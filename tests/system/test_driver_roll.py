"""A live driver roll: six real sg-agents moved one by one from db:// to zookeeper://
(an edited config and SIGHUP each), while a reader that knows both drivers samples
every 0.1 s. No live service may read down, none may read up after its death, and a
kill -9 on either side of the roll is detected within that driver's bound."""

from __future__ import annotations

import signal
from pathlib import Path

import anyio

from sg import ServiceGroup, Settings, Timings
from sg.model import ServiceKey
from sg.testing.sampler import VerdictSampler
from tests.support.daemon_harness import AgentProcess, agent_config
from tests.support.waiting import eventually

INTERVAL = 0.5
DOWN = 3.0
SESSION = 2.0
AGENTS = 6
#: Room for a loaded machine on top of each bound.
MARGIN = 2.0


def config(tmp_path: Path, store: str, driver: str, i: int) -> Path:
    return agent_config(
        tmp_path / f"agent{i}.toml",
        store,
        [{"binary": "sg-compute", "topic": "compute", "host": f"h{i}"}],
        driver=driver,
        report_interval=INTERVAL,
        service_down_time=DOWN,
    )


async def test_six_agents_rolled_from_db_to_zookeeper_no_false_reading(
    tmp_path: Path, sg_zookeeper_url: str
) -> None:
    store = f"sqlite://{tmp_path}/services.db"
    zk = sg_zookeeper_url  # sessions of SESSION seconds
    agents = [
        AgentProcess(config(tmp_path, store, "db://", i), tmp_path / f"agent{i}.log", None)
        for i in range(AGENTS)
    ]
    keys = [ServiceKey(f"h{i}", "sg-compute") for i in range(AGENTS)]
    try:
        timings = Timings(report_interval=INTERVAL, service_down_time=DOWN)
        # The reader of a roll knows both drivers: each record is judged by its own.
        reader = ServiceGroup.from_settings(Settings(store, zk, roll_drivers=("db://",), timings=timings))
        async with reader, anyio.create_task_group() as tg:
            await eventually(
                lambda: reader.list(), lambda s: len(s) == AGENTS and all(x.is_up for x in s), 20, "all up"
            )
            sampler = VerdictSampler(reader, interval=0.1, expected=keys)
            await tg.start(sampler.run)
            # A death before the roll: judged by db (staleness).
            sampler.killed(keys[0], DOWN + MARGIN)
            agents[0].kill()
            for i in range(1, AGENTS - 1):
                config(tmp_path, store, zk, i)
                agents[i].signal(signal.SIGHUP)
                await agents[i].wait_for_event("driver_switched", timeout=15)
            # Every rolled record names zookeeper; the last agent is still on db.
            names = {s.service.host: s.service.driver for s in await reader.list()}
            assert [names[f"h{i}"] for i in range(1, AGENTS - 1)] == ["zookeeper"] * (AGENTS - 2), names
            assert names[f"h{AGENTS - 1}"] == "db", names
            # A death after the roll: judged by ZooKeeper (the session ends).
            sampler.killed(keys[1], SESSION + MARGIN)
            agents[1].kill()
            await eventually(
                lambda: reader.get("h1", "sg-compute"), lambda s: s.verdict.state == "down", 15, "h1 down"
            )
            await eventually(
                lambda: reader.get("h0", "sg-compute"), lambda s: s.verdict.state == "down", 15, "h0 down"
            )
            await anyio.sleep(1.0)  # one more second of reads after the last change (not a sync)
            tg.cancel_scope.cancel()
        tally = sampler.tally()
        assert sampler.unexpected_errors() == []
        assert tally.false_down == 0, tally.reasons
        assert tally.false_up == 0, tally.reasons
        assert set(sampler.detected) == {keys[0], keys[1]}
        assert sampler.detected[keys[0]] <= DOWN + MARGIN, sampler.detected
        assert sampler.detected[keys[1]] <= SESSION + MARGIN, sampler.detected
        print(f"roll: {tally.samples} reads, detected {sampler.detected}, reasons {dict(tally.reasons)}")
    finally:
        for agent in agents:
            agent.kill()
