"""Listing, verdict and membership: the library against the raw work it needs, and tooz.

One sweep grows the same services through 1k, 10k, 50k and 100k in both stores
(SQLite file, PostgreSQL) and both member drivers (memcached keys, ZooKeeper
znodes), seeded raw (:mod:`bench.seed`). At each size every store x driver pair
lists through ``ServiceGroup.list()``, interleaved call by call with the raw work
(:mod:`bench.raw`), and tooz's ``get_members`` lists a group of the same size on
the same servers. Along the way:

- at 1,000: ZooKeeper membership alone (the driver's answer) against tooz;
- at 10,000: one ``verdict()`` against its two raw checks, per pair;
- at the largest size: peak traced memory of one listing and of its raw work (the
  first call at that size, which also checks the seeding).
"""

from __future__ import annotations

import contextlib
import gc
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from kazoo.client import KazooClient
from tooz import coordination

from bench import raw, seed, sgapi
from bench.servers import Servers
from bench.timing import interleaved, interleaved_fast, median

STORES = ("sqlite", "postgresql")
DRIVERS = ("db", "memcached", "zookeeper")
SIZES = (1_000, 10_000, 50_000, 100_000)
RUNS = {1_000: 9, 10_000: 7, 50_000: 3, 100_000: 3}
#: tooz's memcached driver does one GET per member, and keeps the member list in one
#: memcached item (1 MiB by default, about 35,000 members): measured up to here.
TOOZ_MEMCACHED_MAX = 10_000
VERDICT_RUNS = 300
MEMBERSHIP_RUNS = 31
TOOZ_GROUP = b"compute"


def combo(store: str, driver: str) -> str:
    """The name of a store x driver pair in the results."""
    return f"{store}+{driver}"


def log(text: str) -> None:
    """Progress on stdout (``make bench`` shows it)."""
    print(f"  [listing] {text}", flush=True)


async def _sync(fn: Callable[[], object]) -> object:
    # tooz is synchronous; timing it inside the loop keeps one harness for every side.
    return fn()


async def run(servers: Servers, tmp: Path, sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    """Run the sweep and the figures taken along it; return the raw timings."""
    sqlite_path = tmp / "listing.db"
    store_urls = {"sqlite": f"sqlite://{sqlite_path}", "postgresql": await servers.database("listing")}
    driver_urls = {
        "db": "db://",
        "memcached": f"memcached://{servers.mc.address}?prefix={seed.MC_PREFIX}",
        "zookeeper": f"zookeeper://{servers.zk.hosts}{seed.ZK_CHROOT}?session_timeout=10",
    }
    out: dict[str, Any] = {
        "sizes": list(sizes),
        "lib": {},
        "raw": {},
        "tooz": {"zookeeper": {}, "memcached": {}},
        "failed": {},
    }
    for store in STORES:
        for driver in DRIVERS:
            out["lib"][combo(store, driver)] = {}
            out["raw"][combo(store, driver)] = {}

    with contextlib.ExitStack() as clients:
        # Stopped whatever happens: kazoo's threads would otherwise keep the process alive.
        kazoo = KazooClient(hosts=servers.zk.hosts, timeout=10)
        kazoo.start()
        clients.callback(kazoo.close)
        clients.callback(kazoo.stop)
        # tooz's group is the driver's topic node (namespace = the driver's chroot): both list
        # the very same children, and ZooKeeper holds 100,000 nodes once, not twice.
        tooz_zk = coordination.get_coordinator(
            f"zookeeper://{servers.zk.hosts}?namespace={seed.ZK_CHROOT.strip('/')}", b"bench-reader"
        )
        tooz_zk.start()
        clients.callback(_quietly, tooz_zk.stop)
        tooz_zk.create_group(TOOZ_GROUP).get()
        assert seed.zk_topic_path() == f"{seed.ZK_CHROOT}/{TOOZ_GROUP.decode()}"
        tooz_mc = coordination.get_coordinator(
            f"memcached://{servers.mc.address}?timeout=60", b"bench-reader"
        )
        tooz_mc.start()
        clients.callback(_quietly, tooz_mc.stop)
        tooz_mc.create_group(TOOZ_GROUP).get()
        tooz_mc_seeder = seed.ToozMemcachedSeeder(tooz_mc, TOOZ_GROUP)

        async with contextlib.AsyncExitStack() as stack:
            groups: dict[str, Any] = {}
            for store in STORES:
                for driver in DRIVERS:
                    groups[combo(store, driver)] = await stack.enter_async_context(
                        sgapi.open_group(store_urls[store], driver_urls[driver])
                    )
            raw_stores: dict[str, raw.RawStore] = {
                "sqlite": await raw.RawSqlite.open(str(sqlite_path)),
                "postgresql": await raw.RawPostgres.open(store_urls["postgresql"]),
            }
            raw_mc = raw.RawMemcached(servers.mc.port)
            raw_drivers: dict[str, raw.RawDriver] = {
                "db": raw.NoDriver(),
                "memcached": raw_mc,
                "zookeeper": await raw.RawZooKeeper.open(servers.zk.hosts),
            }
            for closeable in (*raw_stores.values(), *raw_drivers.values()):
                stack.push_async_callback(closeable.close)

            have = 0
            for n in sizes:
                began = time.monotonic()
                seed.sqlite_grow(str(sqlite_path), have, n)
                await seed.postgres_grow(store_urls["postgresql"], have, n)
                seed.memcached_grow(servers.mc.port, have, n)
                raw_mc.grow(n)
                seed.zookeeper_grow(kazoo, [seed.zk_member_path(i) for i in range(have, n)])
                if n <= TOOZ_MEMCACHED_MAX:
                    tooz_mc_seeder.grow(have, n)
                have = n
                log(f"{n:,} services seeded in {time.monotonic() - began:.1f} s")

                traced = n == sizes[-1]
                if traced:
                    out["memory"] = {"n": n}
                began = time.monotonic()
                for store in STORES:
                    for driver in DRIVERS:
                        name = combo(store, driver)
                        error = await _one_pair(
                            out, name, groups[name], raw_stores[store], raw_drivers[driver], n, traced
                        )
                        if error is not None:
                            out["failed"].setdefault(name, {})[str(n)] = error
                            log(f"{name:22} {n:>7,}: FAILED: {error}")
                assert len(tooz_zk.get_members(TOOZ_GROUP).get()) == n
                zk_times = await interleaved(
                    {"tooz": lambda: _sync(lambda: tooz_zk.get_members(TOOZ_GROUP).get())}, RUNS.get(n, 3)
                )
                out["tooz"]["zookeeper"][str(n)] = zk_times["tooz"]
                if n <= TOOZ_MEMCACHED_MAX:
                    assert len(tooz_mc.get_members(TOOZ_GROUP).get()) == n
                    mc_times = await interleaved(
                        {"tooz": lambda: _sync(lambda: tooz_mc.get_members(TOOZ_GROUP).get())}, RUNS.get(n, 3)
                    )
                    out["tooz"]["memcached"][str(n)] = mc_times["tooz"]
                log(f"{n:,}: sweep in {time.monotonic() - began:.1f} s")

                if n == 1_000:
                    out["zk_membership"] = await zk_membership(groups, raw_drivers["zookeeper"], tooz_zk, n)
                if n == 10_000:
                    out["verdict"] = await verdicts(groups, raw_stores, raw_drivers, n)

    return out


class Degraded(Exception):
    """A listing that did not read every seeded service up (its timing would be a lie)."""


async def _all_up(group: Any, n: int, traced: bool, deadline: float = 60.0) -> int:
    """List until all ``n`` read up (a driver may be re-establishing a lost ZooKeeper
    session); return tracemalloc's peak over the successful call when ``traced``."""
    give_up = time.monotonic() + deadline
    while True:
        statuses, peak = await _traced(_bind(sgapi.list_all, group), traced)
        listed, up = len(statuses), sgapi.count_up(statuses)
        del statuses
        if listed != n:
            raise Degraded(f"{listed} listed, {n} seeded")
        if up == n:
            return peak
        if time.monotonic() > give_up:
            raise Degraded(
                f"{up} of {n} up after {deadline:g} s (has the data layout changed? see bench/seed.py)"
            )
        await anyio.sleep(0.5)


async def _one_pair(
    out: dict[str, Any],
    name: str,
    group: Any,
    store: raw.RawStore,
    driver: raw.RawDriver,
    n: int,
    traced: bool,
) -> str | None:
    """Time ``name`` at ``n`` (and trace its memory at the largest size); the error if it failed.

    Every timed listing is checked afterwards (outside the timing): one that did not read
    all ``n`` up (a ZooKeeper session lost while a long listing held the event loop makes
    the driver fail fast) is not a figure, so the pair is timed again once.
    """
    listed: list[int] = []

    async def library() -> None:
        statuses = await sgapi.list_all(group)
        listed.append(sgapi.count_up(statuses) if len(statuses) == n else -1)

    error = None
    for _attempt in range(2):
        listed.clear()
        try:
            peak = await _all_up(group, n, traced)
            if traced and "lib" not in out["memory"].get(name, {}):
                _, raw_peak = await _traced(_bind(raw.listing, store, driver, n), traced)
                out["memory"][name] = {"lib": peak, "raw": raw_peak}
                log(
                    f"{name:22} peak traced memory of one {n:,} listing: {peak / 2**20:.0f} MiB, "
                    f"raw work {raw_peak / 2**20:.0f} MiB"
                )
            times = await interleaved(
                {"lib": library, "raw": _bind(raw.listing, store, driver, n)},
                RUNS.get(n, 3),
                # _all_up was the library's warm-up (and the raw's at the largest size);
                # at 50k+ a raw warm-up would cost seconds for little.
                warmup=1 if n <= 10_000 else 0,
            )
            if any(count != n for count in listed):
                raise Degraded(f"a timed listing read {min(listed)} of {n} up")
        except Exception as exc:  # a backend fault under load: recorded, then retried once
            error = f"{type(exc).__name__}: {exc}"
            log(f"{name:22} {n:>7,}: {error}; again")
            continue
        out["lib"][name][str(n)] = times["lib"]
        out["raw"][name][str(n)] = times["raw"]
        out.setdefault("cpu", {}).setdefault(name, {})[str(n)] = {
            "lib": times["lib:cpu"],
            "raw": times["raw:cpu"],
        }
        log(
            f"{name:22} {n:>7,}: list {median(times['lib']) * 1e3:8.1f} ms, "
            f"raw {median(times['raw']) * 1e3:8.1f} ms; process CPU {median(times['lib:cpu']) * 1e3:.1f} / "
            f"{median(times['raw:cpu']) * 1e3:.1f} ms"
        )
        return None
    return error


def _quietly(stop: Callable[[], object]) -> None:
    with contextlib.suppress(Exception):
        stop()


def _bind(fn: Callable[..., Awaitable[object]], *args: object) -> Callable[[], Awaitable[object]]:
    async def call() -> object:
        return await fn(*args)

    return call


async def zk_membership(
    groups: dict[str, Any], raw_zk: raw.RawDriver, tooz_zk: Any, n: int
) -> dict[str, Any]:
    """ZooKeeper membership of ``n``: the driver's answer, raw ``get_children``, tooz."""
    group = groups[combo("postgresql", "zookeeper")]
    services = sgapi.services_of(await sgapi.list_all(group))
    answer = await sgapi.membership(group, services)
    assert sum(1 for seen in answer.values() if seen) == n
    times = await interleaved_fast(
        {
            "lib": _bind(sgapi.membership, group, services),
            "raw": _bind(raw_zk.members, n),
            "tooz": lambda: _sync(lambda: tooz_zk.get_members(TOOZ_GROUP).get()),
        },
        MEMBERSHIP_RUNS,
        warmup=3,
    )
    log(
        f"zookeeper membership of {n:,}: driver {median(times['lib']) * 1e3:.2f} ms, "
        f"raw get_children {median(times['raw']) * 1e3:.2f} ms, tooz {median(times['tooz']) * 1e3:.2f} ms"
    )
    return {"n": n, **times}


async def verdicts(
    groups: dict[str, Any], raw_stores: dict[str, raw.RawStore], raw_drivers: dict[str, raw.RawDriver], n: int
) -> dict[str, Any]:
    """One ``verdict()`` against its raw checks (the row, and the member), per pair."""
    i = n // 2
    out: dict[str, Any] = {"n": n}
    for store in STORES:
        for driver in DRIVERS:
            name = combo(store, driver)
            group = groups[name]
            service = await sgapi.find(group, seed.host(i), seed.BINARY)
            assert sgapi.state(await sgapi.verdict(group, service)) == "up"
            calls = {
                "lib": _bind(sgapi.verdict, group, service),
                "sql": _bind(raw_stores[store].row, i),
            }
            if driver != "db":
                calls["driver"] = _bind(raw_drivers[driver].one, i)
            times = await interleaved_fast(calls, VERDICT_RUNS)
            out[name] = times
            log(
                f"{name:22} verdict {median(times['lib']) * 1e3:.3f} ms; "
                + ", ".join(f"{k} {median(v) * 1e3:.3f} ms" for k, v in times.items() if k != "lib")
            )
    return out


async def _traced(call: Callable[[], Awaitable[Any]], traced: bool) -> tuple[Any, int]:
    """``call()``'s result and, when ``traced``, tracemalloc's peak over the call (bytes)."""
    if not traced:
        return await call(), 0
    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        result = await call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak - base
