"""Requests per second of ``GET /v1/services`` for 1,000 services on a real sg-api.

``python -m bench.bench_api [--services N] [--seconds S] [--postgres]``

sg-api runs as its console script (uvicorn, one worker) on a free loopback port,
over SQLite (or a throwaway PostgreSQL with ``--postgres``) and the db driver.
Peers measured in the same run, on the same machine and data:

- ``GET /healthz`` on the same process: the HTTP + framework floor (two pings);
- ``ServiceGroup.list()`` called directly in-process: the library alone, without
  HTTP or JSON.

The client runs on the same machine and takes CPU from the server: the figures
are for comparison within one run, not a capacity claim.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path

import anyio
import httpx

from sg import Member, ServiceGroup
from sg.testing.servers import PostgresServer, free_port, stop_pid, wait_until

TOKEN = "bench-token-0123456789abcdef"
TIMINGS = {"report_interval": 60.0, "service_down_time": 600.0}


async def seed(store: str, count: int) -> None:
    """``count`` services, each with one real beat (so all read ``up``)."""
    async with ServiceGroup.from_urls(store, "db://", **TIMINGS) as group:
        for i in range(count):
            spec = Member(host=f"compute-{i:05d}", binary="nova-compute", topic="compute")
            assert await group.heartbeat(spec).beat_once()


async def rate(call: Callable[[], Awaitable[object]], seconds: float, concurrency: int) -> float:
    """Calls per second of ``call`` with ``concurrency`` callers for ``seconds``."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await call()
            done += 1

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)
    return done / (time.perf_counter() - started)


def start_api(tmp: Path, store: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = tmp / "sg-api.toml"
    config.write_text(
        f'store = "{store}"\ndriver = "db://"\nreport_interval = 60.0\nservice_down_time = 600.0\n'
        f'[api]\ntokens = ["{TOKEN}"]\n',
        encoding="utf-8",
    )
    script = Path(sys.executable).parent / "sg-api"
    proc = subprocess.Popen(
        [str(script), "--config", str(config), "--listen", f"127.0.0.1:{port}", "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, "sg-api exited"
        try:
            return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(healthy, 30.0, "sg-api /healthz")
    return proc, url


async def measure(store: str, url: str, count: int, seconds: float) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30.0) as client:
        first = await client.get("/v1/services")
        assert first.status_code == 200
        assert len(first.json()["services"]) == count
        body_kib = len(first.content) / 1024

        async def listing() -> None:
            r = await client.get("/v1/services")
            assert r.status_code == 200

        async def health() -> None:
            r = await client.get("/healthz")
            assert r.status_code == 200

        async with ServiceGroup.from_urls(store, "db://", **TIMINGS) as group:

            async def library() -> None:
                assert len(await group.list()) == count

            for concurrency in (1, 8):
                api = await rate(listing, seconds, concurrency)
                hz = await rate(health, seconds, concurrency)
                lib = await rate(library, seconds, concurrency)
                print(
                    f"  concurrency {concurrency}: GET /v1/services ({count} services, {body_kib:.0f} KiB) "
                    f"{api:,.1f} req/s | GET /healthz {hz:,.1f} req/s | library list() {lib:,.1f} calls/s"
                )
                print(
                    f"    ratios: listing/healthz = {api / hz:.3f}, listing/library = {api / lib:.3f} "
                    f"(HTTP+JSON cost per listing ~ {1000 / api - 1000 / lib:.1f} ms)"
                )


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the rates and ratios."""
    parser = argparse.ArgumentParser(prog="bench_api")
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL instead of SQLite")
    args = parser.parse_args(argv if argv is not None else [])
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sg-bench-api-")))
        if args.postgres:
            store = stack.enter_context(PostgresServer()).url()
        else:
            store = f"sqlite://{tmp}/services.db"
        anyio.run(seed, store, args.services)
        proc, url = start_api(tmp, store)
        stack.callback(stop_pid, proc)
        backend = store.split(":")[0]
        print(f"sg-api over {backend} + db driver, {args.services} services, {args.seconds:g} s per figure")
        anyio.run(measure, store, url, args.services, args.seconds)


if __name__ == "__main__":
    main(sys.argv[1:])
