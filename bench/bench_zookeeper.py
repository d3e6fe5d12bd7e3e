"""ZooKeeper: list 1,000 members with verdicts, against tooz's ``get_members`` (kazoo).

Both run in the same process against the same private ZooKeeper. tooz's side is
membership alone (one ``get_children``); ours is ``ServiceGroup.list``: one SQL
query (SQLite) plus one ``get_children``, and a verdict per service. The driver's
membership call alone is timed too. Run: ``python -m bench.bench_zookeeper``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import anyio
from tooz import coordination

from bench.timing import best_and_median, ms
from sg import ServiceGroup
from sg.drivers.zookeeper import ZooKeeperDriver
from sg.model import Member, ServiceKey
from sg.testing.zookeeper import ZooKeeperServer

N = 1_000
RUNS = 21


def tooz_members(hosts: str) -> tuple[float, float]:
    """(best, median) seconds of tooz get_members over N members."""
    coord = coordination.get_coordinator(f"zookeeper://{hosts}", b"bench-reader")
    coord.start()
    try:
        coord.create_group(b"compute").get()
        kazoo = coord._coord  # the kazoo client: N members joined as N clients would have
        for i in range(N):
            kazoo.create(f"/tooz/compute/member-{i:05d}", b"", ephemeral=True)
        assert len(coord.get_members(b"compute").get()) == N
        times = []
        for _ in range(RUNS):
            start = time.perf_counter()
            coord.get_members(b"compute").get()
            times.append(time.perf_counter() - start)
        return min(times), statistics.median(times)
    finally:
        coord.stop()


Timing = tuple[float, float]


async def ours(hosts: str) -> tuple[Timing, Timing, Timing]:
    """(best, median) of group.list(), driver.members() and store.list() over N members."""
    with tempfile.TemporaryDirectory() as tmp:
        async with ServiceGroup.from_urls(
            f"sqlite://{Path(tmp)}/bench.db",
            f"zookeeper://{hosts}/bench?session_timeout=10",
            report_interval=10,
            service_down_time=60,
            store_timeout=60,
            driver_timeout=30,
        ) as group:
            driver = group.driver
            assert isinstance(driver, ZooKeeperDriver)
            for i in range(N):
                service = await group.store.register(Member(f"host-{i:05d}", "sg-compute", "compute", 1))
                await group.store.beat(ServiceKey(service.host, service.binary))
                await driver.join(service.member)
            statuses = await group.list(topic="compute")
            assert len(statuses) == N
            assert all(s.is_up for s in statuses)
            services = [s.service for s in statuses]
            listing = await best_and_median(lambda: group.list(topic="compute"), RUNS)
            membership = await best_and_median(lambda: driver.members(services), RUNS)
            records = await best_and_median(lambda: group.store.list(topic="compute"), RUNS)
            return listing, membership, records


def main() -> None:
    """Print the timings and the ratios."""
    with ZooKeeperServer(tick_time=2000) as zk:
        t_best, t_med = tooz_members(zk.hosts)
        (l_best, l_med), (m_best, m_med), (s_best, s_med) = anyio.run(ours, zk.hosts)
    print(f"members: {N}, runs: {RUNS} (best / median)")
    print(f"tooz get_members (membership only)        {ms(t_best)} / {ms(t_med)}")
    print(f"sg driver.members (membership only)       {ms(m_best)} / {ms(m_med)}")
    print(f"sg store.list (SQLite records only)       {ms(s_best)} / {ms(s_med)}")
    print(f"sg group.list (records + verdicts)        {ms(l_best)} / {ms(l_med)}")
    print(f"ratio sg members / tooz (median)          {m_med / t_med:.2f}x")
    print(f"ratio sg list with verdicts / tooz (median) {l_med / t_med:.2f}x")


if __name__ == "__main__":
    main()
