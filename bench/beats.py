"""Heartbeats per second on one PostgreSQL: single services, and a fleet of hosts.

- ``lib_1`` / ``lib_10``: single-service heartbeats (``ServiceGroup.heartbeat(...)``, as
  ``group.join`` runs one), each ``beat_once`` (store and db driver) in a loop; one
  connection, or ten heartbeats on ten. Their peer is the raw ``UPDATE`` a beat needs
  (stamp ``updated_at`` with the server's clock, count the report) through asyncpg on
  one connection (``raw_1``) and on a pool of ten (``raw_10``).
- ``fleet``: what the issue's 10,000 beats/s is about: many hosts' agents beating one
  PostgreSQL. ``FLEET_HOSTS`` hosts of ``PER_HOST`` services, each host with its own
  batching backends as ``sg-agent`` builds them (one ``beat_many`` round trip per host
  per round), all sharing one store of ten connections; every heartbeat runs
  ``beat_once`` in a loop. The batch window is the agent's (a share of the report
  interval, here the shortest allowed, so the loop measures the store path and not the
  wait). Its peers, on a pool of ten: ``raw_10`` (one UPDATE per beat) and
  ``raw_batch_10`` (the same UPDATE of ``PER_HOST`` rows per statement, ten tasks).

Interleaved windows, medians.
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
FLEET_HOSTS = 40
PER_HOST = 10
#: The fleet's report interval: the shortest allowed, so its batch window is short.
FLEET_INTERVAL = 0.1
WINDOW = 1.5
ROUNDS = 3
UPDATE = (
    "UPDATE services SET updated_at = clock_timestamp(), report_count = report_count + 1 "
    'WHERE host = $1 AND "binary" = $2'
)
UPDATE_MANY = (
    "UPDATE services SET updated_at = clock_timestamp(), report_count = report_count + 1 "
    'WHERE (host, "binary") IN (VALUES {pairs})'
)


def log(text: str) -> None:
    """Progress on stdout."""
    print(f"  [beats] {text}", flush=True)


async def _rate(workers: list[Callable[[], Awaitable[int]]]) -> float:
    """Beats per second with one task per worker, each calling its worker (which returns
    how many beats it made) in a loop for WINDOW."""
    done = 0
    deadline = time.perf_counter() + WINDOW

    async def loop(call: Callable[[], Awaitable[int]]) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            beats = await call()
            done += beats  # not `done += await ...`: that reads `done` before the await

    began = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for call in workers:
            tg.start_soon(loop, call)
    return done / (time.perf_counter() - began)


def _cycle(calls: list[Callable[[], Awaitable[int]]]) -> Callable[[], Awaitable[int]]:
    index = 0

    async def call() -> int:
        nonlocal index
        index = (index + 1) % len(calls)
        return await calls[index]()

    return call


def _fleet_binary(s: int) -> str:
    return f"{seed.BINARY}-{s}"


async def _all_beat(heartbeats: list[Any]) -> None:
    """One beat of every heartbeat, concurrently (each registers its record on its first)."""
    failed: list[Any] = []

    async def one(hb: Any) -> None:
        if not await sgapi.beat(hb):
            failed.append(hb)

    async with anyio.create_task_group() as tg:
        for hb in heartbeats:
            tg.start_soon(one, hb)
    assert not failed, f"{len(failed)} warm-up beats failed"


async def run(servers: Servers) -> dict[str, Any]:
    """Beats/s: library and raw UPDATE, one and ten connections; a fleet and its peers."""
    url = await servers.database("beats")
    async with (
        sgapi.open_group(f"{url}?pool_max=1", report_interval=10.0, service_down_time=60.0) as one,
        sgapi.open_group(f"{url}?pool_max=10", report_interval=10.0, service_down_time=60.0) as ten,
        sgapi.open_group(
            f"{url}?pool_max=10", report_interval=FLEET_INTERVAL, service_down_time=60.0
        ) as fleet_group,
    ):
        hosts = [seed.host(i) for i in range(SERVICES)]
        beats_one = [sgapi.heartbeat(one, h, seed.BINARY, "beats") for h in hosts]
        beats_ten = [sgapi.heartbeat(ten, h, seed.BINARY, "beats") for h in hosts]
        fleet_hosts = [seed.host(i) for i in range(FLEET_HOSTS)]
        fleet: list[list[Any]] = []
        for h in fleet_hosts:
            backends = sgapi.host_backends(fleet_group)
            fleet.append(
                [sgapi.heartbeat_on(backends, h, _fleet_binary(s), "beats") for s in range(PER_HOST)]
            )
        await _all_beat([*beats_one, *beats_ten, *(hb for host in fleet for hb in host)])
        conn = await asyncpg.connect(url)
        pool = await asyncpg.create_pool(url, min_size=SERVICES, max_size=SERVICES)
        try:

            def lib(hb: Any) -> Callable[[], Awaitable[int]]:
                async def call() -> int:
                    return int(await sgapi.beat(hb))

                return call

            def raw_on(target: Any, h: str) -> Callable[[], Awaitable[int]]:
                async def call() -> int:
                    await target.execute(UPDATE, h, seed.BINARY)
                    return 1

                return call

            pairs = ", ".join(f"(${2 * s + 1}, ${2 * s + 2})" for s in range(PER_HOST))
            many = UPDATE_MANY.format(pairs=pairs)

            def raw_host(h: str) -> Callable[[], Awaitable[int]]:
                args = [x for s in range(PER_HOST) for x in (h, _fleet_binary(s))]

                async def call() -> int:
                    await pool.execute(many, *args)
                    return PER_HOST

                return call

            variants: dict[str, list[Callable[[], Awaitable[int]]]] = {
                "lib_1": [_cycle([lib(hb) for hb in beats_one])],
                "raw_1": [_cycle([raw_on(conn, h) for h in hosts])],
                "lib_10": [lib(hb) for hb in beats_ten],
                "raw_10": [raw_on(pool, h) for h in hosts],
                "fleet": [lib(hb) for host in fleet for hb in host],
                "raw_batch_10": [
                    _cycle([raw_host(h) for h in fleet_hosts[i::SERVICES]]) for i in range(SERVICES)
                ],
            }
            rates: dict[str, list[float]] = {name: [] for name in variants}
            for _ in range(ROUNDS):
                for name, workers in variants.items():
                    rates[name].append(await _rate(workers))
        finally:
            await pool.close()
            await conn.close()
    log(", ".join(f"{k} {median(v):,.0f}/s" for k, v in rates.items()))
    return {
        "services": SERVICES,
        "fleet_hosts": FLEET_HOSTS,
        "per_host": PER_HOST,
        "fleet_interval": FLEET_INTERVAL,
        "window": WINDOW,
        **rates,
    }
