"""memcached driver: list 10,000 services with verdicts (PostgreSQL + memcached) against
tooz's memcached ``get_members`` over 1,000 members, in the same run, on the same server.

``python -m bench.bench_memcached``. tooz checks each member with its own GET; the
driver asks with one multi-get per server, and the listing adds one SQL query.
"""

from __future__ import annotations

import time
import uuid

import anyio
from tooz import coordination

from bench.timing import best_and_median, ms
from sg import ServiceGroup
from sg.drivers.memcached import MemcachedDriver
from sg.model import Member, Service
from sg.testing import PostgresServer
from sg.testing.memcached import MemcachedServer

N_SG = 10_000
N_TOOZ = 1_000
RUNS = 7
CONCURRENCY = 10


async def run_servicegroup(pg: PostgresServer, mc: MemcachedServer) -> tuple[float, float, float]:
    """(best, median) of ``group.list()`` over N_SG services, and best membership alone."""
    async with ServiceGroup.from_urls(
        pg.url(),
        f"memcached://{mc.address}?prefix=bench",
        report_interval=10,
        service_down_time=60,
        store_timeout=60,
        driver_timeout=60,
    ) as group:
        driver: MemcachedDriver = group.driver  # type: ignore[assignment]
        services: list[Service] = []

        async def fill(part: range) -> None:
            for i in part:
                service = await group.store.register(Member(f"host-{i:05d}", "sg-compute", "compute", 1))
                await group.store.beat(service.key)
                await driver.join(service.member)
                services.append(service)

        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for c in range(CONCURRENCY):
                tg.start_soon(fill, range(c, N_SG, CONCURRENCY))
        print(f"  set-up: {N_SG} records + keys in {time.perf_counter() - start:.1f} s", flush=True)

        statuses = await group.list()
        assert len(statuses) == N_SG
        assert all(s.is_up for s in statuses), "every service should be up"
        best, median = await best_and_median(group.list, RUNS)
        members_best, _ = await best_and_median(lambda: driver.members(services), RUNS)
        return best, median, members_best


def run_tooz(mc: MemcachedServer) -> tuple[float, float]:
    """(best, median) of tooz ``get_members`` over N_TOOZ live members."""
    url = f"memcached://{mc.address}?timeout=60"
    group_id = b"bench-" + uuid.uuid4().hex.encode()
    reader = coordination.get_coordinator(url, b"reader")
    reader.start()
    reader.create_group(group_id).get()
    start = time.perf_counter()
    for i in range(N_TOOZ):
        member = coordination.get_coordinator(url, f"member-{i:05d}".encode())
        member.start()  # writes the member's TTL key (its first heartbeat)
        member.join_group(group_id).get()
        # Not stop(): that deletes the member key. Close the socket, keep the member alive.
        member.client.close()
    print(f"  set-up: {N_TOOZ} tooz members in {time.perf_counter() - start:.1f} s", flush=True)
    try:
        members = reader.get_members(group_id).get()
        assert len(members) == N_TOOZ, len(members)
        times = []
        for _ in range(RUNS):
            began = time.perf_counter()
            reader.get_members(group_id).get()
            times.append(time.perf_counter() - began)
        times.sort()
        return times[0], times[len(times) // 2]
    finally:
        reader.stop()


def main() -> None:
    """Print the comparison (best and median of RUNS, and per member)."""
    with PostgresServer() as pg, MemcachedServer(memory_mb=256) as mc:
        sg_best, sg_median, members_best = anyio.run(run_servicegroup, pg, mc)
        tooz_best, tooz_median = run_tooz(mc)
    print(
        f"servicegroup list {N_SG:,} with verdicts (PostgreSQL + memcached): "
        f"best {ms(sg_best)}, median {ms(sg_median)}; membership alone (one multi-get): {ms(members_best)}"
    )
    print(f"tooz memcached get_members of {N_TOOZ:,}: best {ms(tooz_best)}, median {ms(tooz_median)}")
    per_sg, per_tooz, per_members = sg_median / N_SG, tooz_median / N_TOOZ, members_best / N_SG
    print(
        f"per member (median): tooz get_members {per_tooz * 1e6:.1f} us, servicegroup list with verdicts "
        f"{per_sg * 1e6:.1f} us ({per_tooz / per_sg:.1f}x less), membership alone "
        f"{per_members * 1e6:.1f} us ({per_tooz / per_members:.1f}x less); "
        f"whole calls: servicegroup's 10,000 take {sg_median / tooz_median:.1f}x tooz's 1,000"
    )


if __name__ == "__main__":
    main()
