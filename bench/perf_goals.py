"""The goals of issue 12, each against its peer in the same run (medians, interleaved).

``python -m bench.perf_goals [list] [verdict] [zk] [cli] [beats]``: a stop-gap until
the harness (``make bench``) lands; it prints one line per figure: ours, the peer,
the ratio. Runs of ours and of the peer alternate, so a noisy neighbour hits both.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiomcache
import aiosqlite
import anyio
import asyncpg

from sg import ServiceGroup
from sg.drivers.memcached import MemcachedDriver
from sg.drivers.zookeeper import ZooKeeperDriver
from sg.model import Member, Service
from sg.store.postgresql import DIALECT as PG
from sg.store.sql import COLUMNS
from sg.store.sqlite import DIALECT as SQLITE
from sg.testing import MemcachedServer, PostgresServer, ZooKeeperServer

RUNS = int(os.environ.get("SG_BENCH_RUNS", "9"))
TIMINGS = {"report_interval": 10, "service_down_time": 600, "store_timeout": 60, "driver_timeout": 60}


def raw_select(dialect: object, where: str = "") -> str:
    d = dialect
    age = f"{d.epoch(d.clock)} - {d.epoch('updated_at')} AS age"  # type: ignore[attr-defined]
    return f"SELECT {COLUMNS}, {age} FROM services{where}"


async def interleaved(fns: dict[str, Callable[[], Awaitable[object]]], runs: int = RUNS) -> dict[str, float]:
    """Median seconds of each function, the runs alternating between them."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        await fn()  # warm-up
    for _ in range(runs):
        for name, fn in fns.items():
            began = time.perf_counter()
            await fn()
            times[name].append(time.perf_counter() - began)
    return {name: statistics.median(t) for name, t in times.items()}


def line(what: str, ours: float, peer_name: str, peer: float, unit: str = "ms") -> None:
    scale = 1000 if unit == "ms" else 1
    print(
        f"{what:58} {ours * scale:9.2f} {unit} | {peer_name:40} {peer * scale:9.2f} {unit} "
        f"| {ours / peer:5.2f}x",
        flush=True,
    )


async def fill_store(
    group: ServiceGroup, n: int, topic: str = "compute", concurrency: int = 10
) -> list[Service]:
    out: list[Service] = []

    async def part(r: range) -> None:
        for i in r:
            s = await group.store.register(Member(f"host-{i:05d}", "sg-compute", topic, 1))
            await group.store.beat(s.key)
            out.append(s)

    async with anyio.create_task_group() as tg:
        for c in range(concurrency):
            tg.start_soon(part, range(c, n, concurrency))
    return out


async def join_all(driver: object, services: list[Service], concurrency: int = 20) -> None:
    async def part(chunk: list[Service]) -> None:
        for s in chunk:
            await driver.join(s.member)  # type: ignore[attr-defined]

    async with anyio.create_task_group() as tg:
        for c in range(concurrency):
            tg.start_soon(part, services[c::concurrency])


# -- list() of N on every store x driver -------------------------------------------------


async def bench_list(pg: PostgresServer, mc: MemcachedServer, zk: ZooKeeperServer, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stores = {"sqlite": f"sqlite://{tmp}/b.db", "postgresql": pg.url()}
        drivers = {
            "db": "db://",
            "memcached": f"memcached://{mc.address}?prefix=b",
            "zookeeper": zk.url("/bench", session_timeout=10),
        }
        for sname, surl in stores.items():
            filled: list[Service] | None = None
            for dname, durl in drivers.items():
                async with ServiceGroup.from_urls(surl, durl, **TIMINGS) as group:
                    if filled is None:
                        filled = await fill_store(group, n, concurrency=1 if sname == "sqlite" else 10)
                    if dname != "db":
                        await join_all(group.driver, filled)
                    statuses = await group.list()
                    assert len(statuses) == n, (sname, dname)
                    assert all(s.is_up for s in statuses), (sname, dname)
                    await _list_vs_raw(group, sname, dname, surl, mc, zk, filled, n)


async def _list_vs_raw(
    group: ServiceGroup,
    sname: str,
    dname: str,
    surl: str,
    mc: MemcachedServer,
    zk: ZooKeeperServer,
    services: list[Service],
    n: int,
) -> None:
    sql_text = raw_select(SQLITE if sname == "sqlite" else PG) + ' ORDER BY host, "binary"'
    closers: list[Callable[[], Awaitable[object]]] = []
    if sname == "sqlite":
        db = await aiosqlite.connect(surl.removeprefix("sqlite://"))
        closers.append(db.close)

        async def select() -> object:
            async with db.execute(sql_text) as cur:
                return await cur.fetchall()
    else:
        conn = await asyncpg.connect(surl)
        closers.append(conn.close)

        async def select() -> object:
            return await conn.fetch(sql_text)

    member: Callable[[], Awaitable[object]] | None = None
    if dname == "memcached":
        driver = group.driver
        assert isinstance(driver, MemcachedDriver)
        keys = [driver.placement(s)[1] for s in services]
        host, port = mc.address.split(":")
        client = aiomcache.Client(host, int(port))
        closers.append(client.close)

        async def member() -> object:
            return await client.multi_get(*keys)
    elif dname == "zookeeper":
        driver = group.driver
        assert isinstance(driver, ZooKeeperDriver)
        raw = driver.client.raw
        path = driver.topic_path("compute")

        async def member() -> object:
            return await raw.get_children(path)

    async def raw_work() -> object:
        if member is None:
            return await select()
        return await asyncio.gather(select(), member())

    try:
        t = await interleaved({"ours": group.list, "raw": raw_work})
    finally:
        for close in closers:
            await close()
    peer = "SELECT"
    if member is not None:
        peer += " || " + ("multi_get" if dname == "memcached" else "get_children")
    line(f"list() of {n:,} {sname}+{dname}", t["ours"], f"raw {peer}", t["raw"])


# -- one verdict -------------------------------------------------------------------------


async def bench_verdict(pg: PostgresServer, mc: MemcachedServer) -> None:
    async with ServiceGroup.from_urls(pg.url(), f"memcached://{mc.address}?prefix=v", **TIMINGS) as group:
        (service,) = await fill_store(group, 1, concurrency=1)
        await group.driver.join(service.member)
        assert await group.is_up(service)
        driver = group.driver
        assert isinstance(driver, MemcachedDriver)
        key = driver.placement(service)[1]
        conn = await asyncpg.connect(pg.url())
        host, port = mc.address.split(":")
        client = aiomcache.Client(host, int(port))
        one = raw_select(PG, ' WHERE host = $1 AND "binary" = $2')
        try:
            t = await interleaved(
                {
                    "ours": lambda: group.verdict(service),
                    "select": lambda: conn.fetchrow(one, service.host, service.binary),
                    "get": lambda: client.get(key),
                },
                runs=RUNS * 200,
            )
        finally:
            await conn.close()
            await client.close()
    slower = max(t["select"], t["get"])
    line("verdict() postgresql+memcached", t["ours"], "slower of raw fetchrow / get", slower)
    print(f"    (raw fetchrow {t['select'] * 1e3:.3f} ms, raw get {t['get'] * 1e3:.3f} ms)")


# -- ZooKeeper membership of 1,000 vs tooz -----------------------------------------------


def tooz_members(zk: ZooKeeperServer, n: int) -> Callable[[], object]:
    from tooz import coordination

    coord = coordination.get_coordinator(f"zookeeper://{zk.hosts}", b"bench-reader")
    coord.start()
    coord.create_group(b"compute").get()
    kazoo = coord._coord
    for i in range(n):
        kazoo.create(f"/tooz/compute/member-{i:05d}", b"", ephemeral=True)
    assert len(coord.get_members(b"compute").get()) == n
    return lambda: coord.get_members(b"compute").get()


async def bench_zk(pg: PostgresServer, zk: ZooKeeperServer, n: int) -> None:
    tooz = tooz_members(zk, n)

    async def tooz_async() -> object:
        return tooz()  # kazoo's own thread does the I/O; we time the blocking call

    async with ServiceGroup.from_urls(pg.url(), zk.url("/zkb", session_timeout=10), **TIMINGS) as group:
        services = await fill_store(group, n, topic="zk")
        await join_all(group.driver, services)
        assert all(s.is_up for s in await group.list(topic="zk"))
        driver = group.driver
        t = await interleaved(
            {
                "members": lambda: driver.members(services),
                "list": lambda: group.list(topic="zk"),
                "tooz": tooz_async,
            },
            runs=RUNS * 5,
        )
    line(f"zookeeper driver.members() of {n:,}", t["members"], "tooz get_members", t["tooz"])
    line(f"list() of {n:,} postgresql+zookeeper", t["list"], "tooz get_members", t["tooz"])


# -- heartbeats per second on one PostgreSQL, ten connections --------------------------------


async def bench_beats(pg: PostgresServer, n: int = 10_000) -> None:
    from sg.model import ServiceKey
    from sg.store.postgresql import PostgresStore

    async with ServiceGroup.from_urls(pg.url() + "?pool_max=10", "db://", **TIMINGS) as group:
        await fill_store(group, n)
        store = group.store
        assert isinstance(store, PostgresStore)
        keys = [ServiceKey(f"host-{i:05d}", "sg-compute") for i in range(n)]
        pool = await asyncpg.create_pool(pg.url(), min_size=10, max_size=10)
        assert pool is not None
        raw_sql = store.sql.beat

        async def spread(worker: Callable[[list[ServiceKey]], Awaitable[None]], parts: int = 10) -> None:
            async with anyio.create_task_group() as tg:
                for c in range(parts):
                    tg.start_soon(worker, keys[c::parts])

        async def single(part: list[ServiceKey]) -> None:
            for key in part:
                await store.beat(key)

        async def raw(part: list[ServiceKey]) -> None:
            async with pool.acquire() as conn:
                for key in part:
                    await conn.fetchrow(raw_sql, *key)

        async def batched(part: list[ServiceKey]) -> None:
            for start in range(0, len(part), 100):
                await store.beat_many(part[start : start + 100])

        try:
            runs = {"single": single, "raw": raw, "batched": batched}
            t = await interleaved({k: (lambda w=w: spread(w)) for k, w in runs.items()}, runs=3)
        finally:
            await pool.close()
    rate = {k: n / v for k, v in t.items()}
    print(
        f"{'beats/s, 1 PostgreSQL, 10 connections':58} single {rate['single']:9,.0f} | "
        f"raw UPDATE {rate['raw']:9,.0f} ({rate['single'] / rate['raw']:.2f}x) | "
        f"beat_many of 100 {rate['batched']:9,.0f} ({rate['batched'] / rate['raw']:.2f}x raw)",
        flush=True,
    )


# -- sgctl service list, cold ------------------------------------------------------------


async def _seed_sqlite(path: str, n: int) -> None:
    async with ServiceGroup.from_urls(f"sqlite://{path}", "db://", **TIMINGS) as group:
        await fill_store(group, n, concurrency=1)


def bench_cli(n: int = 100) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/cli.db"
        anyio.run(_seed_sqlite, path, n)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SG_")}
        env["SG_STORE"] = f"sqlite://{path}"
        sgctl = [str(Path(sys.executable).parent / "sgctl"), "service", "list"]
        bare = [sys.executable, "-c", "pass"]
        imp = [sys.executable, "-c", "import sg.cli"]
        times: dict[str, list[float]] = {"sgctl": [], "bare": [], "import": []}
        for _ in range(RUNS):
            for name, cmd in (("sgctl", sgctl), ("bare", bare), ("import", imp)):
                began = time.perf_counter()
                out = subprocess.run(cmd, env=env, capture_output=True, check=True, cwd=tmp)
                times[name].append(time.perf_counter() - began)
                if name == "sgctl":
                    assert out.stdout.count(b"\n") == n + 1, out.stdout[-300:]
        med = {k: statistics.median(v) for k, v in times.items()}
    line(f"sgctl service list cold, {n} services (SQLite)", med["sgctl"], "python -c pass", med["bare"], "s")
    line("python -c 'import sg.cli'", med["import"], "python -c pass", med["bare"], "s")


def main(argv: list[str]) -> None:
    wanted = set(argv) or {"list", "verdict", "zk", "cli"}
    n = int(os.environ.get("SG_BENCH_N", "10000"))
    if "cli" in wanted:
        bench_cli()
    if "beats" in wanted:
        with PostgresServer() as pg:
            anyio.run(bench_beats, pg)
    if wanted & {"list", "verdict", "zk"}:
        with (
            PostgresServer() as pg,
            MemcachedServer(memory_mb=256) as mc,
            ZooKeeperServer(tick_time=2000) as zk,
        ):
            if "verdict" in wanted:
                anyio.run(bench_verdict, pg, mc)
            if "zk" in wanted:
                anyio.run(bench_zk, pg, zk, 1000)
            if "list" in wanted:
                anyio.run(bench_list, pg, mc, zk, n)


if __name__ == "__main__":
    main(sys.argv[1:])
