"""Stores: list 10,000 services with verdicts, and heartbeats per second, on SQLite and PostgreSQL.

The peer in the same run is the raw query through the same driver (aiosqlite /
asyncpg) with no servicegroup code: the ratio is what the library adds.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import aiosqlite
import anyio
import asyncpg

from bench.timing import best_and_median, ms
from sg import ServiceGroup
from sg.model import Member, ServiceKey
from sg.store.sql import COLUMNS
from sg.testing import PostgresServer

N = 10_000
RUNS = 7
RAW = f"SELECT {COLUMNS} FROM services"


async def fill(group: ServiceGroup) -> None:
    store = group.store
    for i in range(N):
        await store.register(Member(f"host-{i:05d}", "sg-compute", "compute", 1))


async def beats(group: ServiceGroup, concurrency: int) -> float:
    """Beats per second for N beats spread over ``concurrency`` tasks."""
    keys = [ServiceKey(f"host-{i:05d}", "sg-compute") for i in range(N)]

    async def worker(part: list[ServiceKey]) -> None:
        for key in part:
            await group.store.beat(key)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for c in range(concurrency):
            tg.start_soon(worker, keys[c::concurrency])
    return N / (time.perf_counter() - start)


async def run_sqlite() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        async with ServiceGroup.from_urls(f"sqlite://{path}", store_timeout=60) as group:
            await fill(group)
            rate = await beats(group, 1)
            best, med = await best_and_median(group.list, RUNS)
            assert len(await group.list()) == N
            async with aiosqlite.connect(path) as db:

                async def raw() -> None:
                    async with db.execute(RAW) as cur:
                        await cur.fetchall()

                _, rmed = await best_and_median(raw, RUNS)
    print(f"sqlite     beats/s (1 connection): {rate:,.0f}")
    print(
        f"sqlite     list {N:,} with verdicts: best {ms(best)}, median {ms(med)}; "
        f"raw SELECT: median {ms(rmed)}; ratio {med / rmed:.1f}x"
    )


async def run_postgres(server: PostgresServer) -> None:
    url = server.url()
    async with ServiceGroup.from_urls(url + "?pool_max=10", store_timeout=60) as group:
        await fill(group)
        rate1 = await beats(group, 1)
        rate10 = await beats(group, 10)
        best, med = await best_and_median(group.list, RUNS)
        assert len(await group.list()) == N
        conn = await asyncpg.connect(url)
        try:
            _, rmed = await best_and_median(lambda: conn.fetch(RAW), RUNS)
        finally:
            await conn.close()
    print(f"postgresql beats/s: 1 connection {rate1:,.0f}, 10 connections {rate10:,.0f}")
    print(
        f"postgresql list {N:,} with verdicts: best {ms(best)}, median {ms(med)}; "
        f"raw SELECT: median {ms(rmed)}; ratio {med / rmed:.1f}x"
    )


def main() -> None:
    anyio.run(run_sqlite)
    with PostgresServer() as server:
        anyio.run(run_postgres, server)


if __name__ == "__main__":
    main()
