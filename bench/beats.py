"""Heartbeats per second on one PostgreSQL, with one and with ten connections.

The library beats through ``ServiceGroup.heartbeat(...)`` (store and db driver,
as an agent does); the peer is the raw ``UPDATE`` a beat needs (stamp
``updated_at`` with the server's clock, count the report) through asyncpg,
on one connection and on a pool of ten. Ten services, each beaten by its own task
when there are ten connections. Interleaved windows, medians.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import asyncpg

from bench import seed, sgapi
from bench.servers import Servers
from bench.timing import median

SERVICES = 10
WINDOW = 1.5
ROUNDS = 3
UPDATE = (
    "UPDATE services SET updated_at = clock_timestamp(), report_count = report_count + 1 "
    'WHERE host = $1 AND "binary" = $2'
)


def log(text: str) -> None:
    """Progress on stdout."""
    print(f"  [beats] {text}", flush=True)


async def _rate(workers: list[Callable[[], Awaitable[object]]]) -> float:
    """Calls per second with one task per worker, each calling its worker in a loop for WINDOW."""
    done = 0
    deadline = time.perf_counter() + WINDOW

    async def loop(call: Callable[[], Awaitable[object]]) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await call()
            done += 1

    began = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for call in workers:
            tg.start_soon(loop, call)
    return done / (time.perf_counter() - began)


def _cycle(calls: list[Callable[[], Awaitable[object]]]) -> Callable[[], Awaitable[object]]:
    index = 0

    async def call() -> object:
        nonlocal index
        index = (index + 1) % len(calls)
        return await calls[index]()

    return call


async def run(servers: Servers) -> dict[str, Any]:
    """Beats/s: library and raw UPDATE, one and ten connections."""
    url = await servers.database("beats")
    async with (
        sgapi.open_group(f"{url}?pool_max=1", report_interval=10.0, service_down_time=60.0) as one,
        sgapi.open_group(f"{url}?pool_max=10", report_interval=10.0, service_down_time=60.0) as ten,
    ):
        hosts = [seed.host(i) for i in range(SERVICES)]
        beats_one = [sgapi.heartbeat(one, h, seed.BINARY, "beats") for h in hosts]
        beats_ten = [sgapi.heartbeat(ten, h, seed.BINARY, "beats") for h in hosts]
        for hb in (*beats_one, *beats_ten):
            assert await sgapi.beat(hb), "a warm-up beat failed"
        conn = await asyncpg.connect(url)
        pool = await asyncpg.create_pool(url, min_size=SERVICES, max_size=SERVICES)
        try:

            def lib(hb: Any) -> Callable[[], Awaitable[object]]:
                return lambda: sgapi.beat(hb)

            def raw_on(target: Any, h: str) -> Callable[[], Awaitable[object]]:
                return lambda: target.execute(UPDATE, h, seed.BINARY)

            variants: dict[str, list[Callable[[], Awaitable[object]]]] = {
                "lib_1": [_cycle([lib(hb) for hb in beats_one])],
                "raw_1": [_cycle([raw_on(conn, h) for h in hosts])],
                "lib_10": [lib(hb) for hb in beats_ten],
                "raw_10": [raw_on(pool, h) for h in hosts],
            }
            rates: dict[str, list[float]] = {name: [] for name in variants}
            for _ in range(ROUNDS):
                for name, workers in variants.items():
                    rates[name].append(await _rate(workers))
        finally:
            await pool.close()
            await conn.close()
    log(", ".join(f"{k} {median(v):,.0f}/s" for k, v in rates.items()))
    return {"services": SERVICES, "window": WINDOW, **rates}
