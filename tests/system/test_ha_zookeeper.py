"""A 3-server ZooKeeper quorum under real ``sg-agent`` processes (issue 11, part 2).

Agents beat into a shared SQLite file and the ensemble; a reader in this process
samples ``group.list()`` every 0.1 s and counts false ``up``, false ``down`` and
``unknown`` against the agents the test killed. ``service_down_time`` is long, so
every ``down`` here comes from the driver, never from a stale record.

Blocking ensemble calls (they poll ``srvr``) run in a worker thread, so the sampler
keeps its rate while a server is killed or an election runs.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread
import pytest

from sg import ServiceGroup
from sg.errors import BackendUnavailable
from sg.model import ServiceKey
from sg.testing.ensemble import ZooKeeperEnsemble
from sg.testing.sampler import VerdictSampler
from tests.support.daemon_harness import AgentProcess, agent_config
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

REPORT_INTERVAL = 0.5
#: Long enough that no record goes stale in these tests: every down is the driver's.
SERVICE_DOWN_TIME = 10.0
SESSION_TIMEOUT = 2.0
DRIVER_TIMEOUT = 1.0
AGENTS = 4
BINARY, TOPIC = "sg-ha", "ha"
#: Slack for a loaded 2-core machine: a sample every 0.1 s, reconnects that back off
#: up to min(1 s, session/4) = 0.5 s, and ZooKeeper's expiry ticks (tickTime 0.2 s).
MARGIN = 1.5
T = TypeVar("T")


@dataclass
class Fleet:
    """Agents, one service each, and what a reader needs to find them."""

    store: str
    driver: str
    agents: dict[ServiceKey, AgentProcess]

    def alive(self) -> list[ServiceKey]:
        return [k for k, a in self.agents.items() if a.proc.poll() is None]

    def exited(self) -> dict[str, int]:
        return {k.host: a.proc.returncode for k, a in self.agents.items() if a.proc.poll() is not None}


@contextlib.contextmanager
def fleet(tmp_path: Path, ensemble: ZooKeeperEnsemble, count: int = AGENTS) -> Iterator[Fleet]:
    store = f"sqlite://{tmp_path}/services.db"
    driver = ensemble.url("sg-ha", session_timeout=SESSION_TIMEOUT)
    agents: dict[ServiceKey, AgentProcess] = {}
    try:
        for i in range(count):
            config = agent_config(
                tmp_path / f"agent{i}.toml",
                store,
                [{"host": f"h{i}", "binary": BINARY, "topic": TOPIC}],
                driver=driver,
                report_interval=REPORT_INTERVAL,
                service_down_time=SERVICE_DOWN_TIME,
                driver_timeout=DRIVER_TIMEOUT,
                store_timeout=DRIVER_TIMEOUT,
            )
            agents[ServiceKey(f"h{i}", BINARY)] = AgentProcess(config, tmp_path / f"agent{i}.log", None)
        yield Fleet(store, driver, agents)
    finally:
        for agent in agents.values():
            agent.kill()


@contextlib.asynccontextmanager
async def sampling(group: ServiceGroup, keys: list[ServiceKey]) -> AsyncIterator[VerdictSampler]:
    sampler = VerdictSampler(group, interval=0.1, topic=TOPIC, expected=keys)
    async with anyio.create_task_group() as tg:
        await tg.start(sampler.run)
        try:
            yield sampler
        finally:
            tg.cancel_scope.cancel()


def reader(f: Fleet) -> ServiceGroup:
    return ServiceGroup.from_urls(
        f.store,
        f.driver,
        report_interval=REPORT_INTERVAL,
        service_down_time=SERVICE_DOWN_TIME,
        driver_timeout=DRIVER_TIMEOUT,
    )


async def all_up(group: ServiceGroup, keys: list[ServiceKey], timeout: float, what: str) -> float:
    """Wait until every key reads up; return how long it took."""
    want = set(keys)

    async def up_keys() -> set[ServiceKey]:
        try:
            return {s.service.key for s in await group.list(topic=TOPIC) if s.is_up}
        except BackendUnavailable:
            return set()  # an unreachable backend is "not yet"

    _, took = await eventually(up_keys, lambda up: want <= up, timeout, what, interval=0.05)
    return took


async def current(read: Callable[[], T]) -> T:
    """A probe for ``eventually`` that reads a value in this process."""
    await anyio.sleep(0)
    return read()


async def detection(sampler: VerdictSampler, key: ServiceKey, timeout: float) -> float:
    """Wait until the sampler read ``key`` down after its death; return the delay."""
    found, _ = await eventually(
        lambda: current(lambda: sampler.detected.get(key)), lambda d: d is not None, timeout, f"{key} down"
    )
    assert found is not None
    return found


def never_up_after_down(sampler: VerdictSampler, key: ServiceKey) -> bool:
    """True if ``key`` never read up again once it read down."""
    states = [state for _, k, state, _ in sampler.transitions if k == key]
    return "up" not in states[states.index("down") :] if "down" in states else True


async def test_leader_killed_no_false_down_and_kill9_during_election_detected(
    tmp_path: Path, sg_zookeeper_ensemble: ZooKeeperEnsemble
) -> None:
    ensemble = sg_zookeeper_ensemble
    with fleet(tmp_path, ensemble) as f:
        keys = list(f.agents)
        victim = keys[0]
        async with reader(f) as group:
            await all_up(group, keys, 30, "every agent up before the election")
            async with sampling(group, keys) as sampler:
                await eventually(
                    lambda: current(lambda: len(sampler.samples)), lambda n: n >= 10, 10, "samples"
                )
                old, killed_at = await anyio.to_thread.run_sync(ensemble.kill_leader)
                # kill -9 one agent while the election runs.
                sampler.killed(victim, bound=SESSION_TIMEOUT + MARGIN + 30, at=time.monotonic())
                f.agents[victim].kill()
                new, elected_at = await anyio.to_thread.run_sync(ensemble.wait_new_leader, old)
                election = elected_at - killed_at
                bound = SESSION_TIMEOUT + election + MARGIN
                sampler.killed(victim, bound=bound, at=sampler.deaths[victim].at)
                live = [k for k in keys if k != victim]
                back = await all_up(group, live, 20, "live agents up after the election")
                await detection(sampler, victim, bound + 5)
                # Scenario length, not synchronisation: two more beats of samples.
                await anyio.sleep(2 * REPORT_INTERVAL)
        tally = sampler.tally()
        detected = sampler.detected[victim]
        print(
            f"leader {old} -> {new}: election {election:.2f}s, survivors up {back:.2f}s after it, "
            f"kill -9 detected in {detected:.2f}s (bound {bound:.2f}s); {tally}"
        )
        assert tally.false_down == 0, tally.reasons
        assert tally.false_up == 0, tally.reasons
        assert detected <= bound, f"kill -9 detected in {detected:.2f}s > {bound:.2f}s"
        assert f.exited() == {victim.host: -signal.SIGKILL}, "only the killed agent exited"


async def test_quorum_lost_reads_unknown_never_up_for_dead_and_restores_within_two_beats(
    tmp_path: Path, sg_zookeeper_ensemble: ZooKeeperEnsemble
) -> None:
    ensemble = sg_zookeeper_ensemble
    with fleet(tmp_path, ensemble) as f:
        keys = list(f.agents)
        victim = keys[-1]
        live = [k for k in keys if k != victim]
        async with reader(f) as group:
            await all_up(group, keys, 30, "every agent up before the outage")
            async with sampling(group, keys) as sampler:
                leader = await anyio.to_thread.run_sync(ensemble.leader)
                stopped = [leader, next(sid for sid in ensemble.members if sid != leader)]
                for sid in stopped:
                    await anyio.to_thread.run_sync(ensemble.stop_member, sid)

                async def serving() -> list[int]:
                    modes = await anyio.to_thread.run_sync(ensemble.modes)
                    return [sid for sid, mode in modes.items() if mode is not None]

                await eventually(serving, lambda s: not s, 10, "no member serves without a quorum")
                outage_start = time.monotonic()
                # kill -9 an agent while the quorum is lost: it must never read up.
                sampler.killed(victim, bound=0.0)
                f.agents[victim].kill()
                # Scenario length, not synchronisation: hold the outage past the session
                # timeout, so sessions could expire.
                await anyio.sleep(SESSION_TIMEOUT + 1.0)
                outage_end = time.monotonic()
                # Once the quorum is back the dead agent's node lives until its session
                # expires: its real bound is set below, from the restore time.
                sampler.killed(victim, bound=3600.0, at=sampler.deaths[victim].at)
                for sid in stopped:
                    await anyio.to_thread.run_sync(lambda sid=sid: ensemble.start_member(sid, wait=False))
                await anyio.to_thread.run_sync(ensemble.wait_serving)
                restored_at = time.monotonic()
                back = await all_up(group, live, 20, "live agents up after the quorum is back")
                # After the restore the dead agent's session expires on the new leader's clock.
                bound = restored_at - sampler.deaths[victim].at + SESSION_TIMEOUT + MARGIN
                sampler.killed(victim, bound=bound, at=sampler.deaths[victim].at)
                await detection(sampler, victim, bound + 5)
        during = sampler.tally(outage_start, outage_end)
        tally = sampler.tally()
        print(
            f"quorum lost {outage_end - outage_start:.2f}s: {during}; restored: survivors up "
            f"{back:.2f}s after the quorum served; dead agent down {sampler.detected[victim]:.2f}s "
            f"after its kill (bound {bound:.2f}s); whole run {tally}"
        )
        assert during.samples >= 10
        assert during.up == 0, f"a reader read up without a quorum: {during.reasons}"
        assert during.false_down == 0, during.reasons
        assert during.unknown == during.samples * len(keys), during.reasons
        assert tally.false_down == 0, tally.reasons
        assert tally.false_up == 0, tally.reasons
        assert sampler.detected[victim] <= bound
        assert never_up_after_down(sampler, victim)
        assert back <= 2 * REPORT_INTERVAL + MARGIN, f"survivors up {back:.2f}s after the restore"
        assert f.exited() == {victim.host: -signal.SIGKILL}, "agents never exit on a lost quorum"
