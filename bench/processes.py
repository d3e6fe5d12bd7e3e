"""Figures taken on the real commands: ``sgctl`` cold start, ``sg-api`` requests per
second, ``sg-agent`` CPU per beat, and detection after ``kill -9`` of an agent.

Each command is the console script of this environment, run with a TOML config
written here and an environment without ``SG_*`` variables. Every process is
started here and stopped by its pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx

from bench import seed, sgapi
from bench.servers import Servers
from bench.timing import median
from sg.testing import free_port, wait_until

BIN = Path(sys.executable).parent
TICK = os.sysconf("SC_CLK_TCK")
TOKEN = "bench-token-0123456789abcdef"


def log(text: str) -> None:
    """Progress on stdout."""
    print(f"  [processes] {text}", flush=True)


def clean_env() -> dict[str, str]:
    """The environment without settings that could leak into a command."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SG_", "NOTIFY_", "WATCHDOG_"))}


def write_config(
    path: Path,
    store: str,
    driver: str = "db://",
    *,
    report_interval: float = 10.0,
    service_down_time: float = 3600.0,
    services: tuple[tuple[str, str], ...] = (),
    topic: str = seed.TOPIC,
    extra: str = "",
) -> Path:
    """A config for sg-agent / sg-api / sgctl: ``services`` are ``(host, binary)`` pairs."""
    lines = [
        f"store = {json.dumps(store)}",
        f"driver = {json.dumps(driver)}",
        f"report_interval = {report_interval}",
        f"service_down_time = {service_down_time}",
        extra,
    ]
    for host, binary in services:
        lines += ["[[service]]", f"host = {json.dumps(host)}", f"binary = {json.dumps(binary)}"]
        lines.append(f"topic = {json.dumps(topic)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@contextlib.contextmanager
def process(argv: list[str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv``; on exit SIGTERM it (SIGKILL after 10 s), by pid."""
    with log_path.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=clean_env())
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


async def sqlite_with(path: Path, count: int, topic: str = seed.TOPIC) -> str:
    """A SQLite file with the library's schema (it migrates on open) and ``count`` fresh services."""
    url = f"sqlite://{path}"
    async with sgapi.open_group(url):
        pass
    seed.sqlite_grow(str(path), 0, count, topic)
    return url


# -- sgctl cold ---------------------------------------------------------------------------

SGCTL_SERVICES = 100
SGCTL_RUNS = 7


def _wall(argv: list[str], cwd: Path) -> tuple[float, bytes]:
    began = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, cwd=cwd, env=clean_env(), check=False)
    took = time.perf_counter() - began
    assert done.returncode == 0, f"{argv[:3]} exited {done.returncode}: {done.stderr[-500:]!r}"
    return took, done.stdout


def compile_sg() -> None:
    """Byte-compile the ``sg`` package, as ``pip install`` does for an installed one.

    An editable install under ``PYTHONDONTWRITEBYTECODE`` (set on the development
    machines) otherwise compiles every ``sg`` module from source at each start, about
    45 ms that no installed sgctl pays and ``python -c pass`` (whose stdlib is
    compiled) never pays either.
    """
    import sg

    package = Path(sg.__file__).parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True, env=clean_env())


def sgctl_cold(tmp: Path) -> dict[str, Any]:
    """``sgctl service list`` over 100 services on SQLite, against ``python -c pass``."""
    directory = tmp / "sgctl"
    directory.mkdir()
    compile_sg()
    store = anyio.run(sqlite_with, directory / "services.db", SGCTL_SERVICES)
    config = write_config(directory / "sg.toml", store)
    commands = {
        "sgctl": [str(BIN / "sgctl"), "--config", str(config), "service", "list"],
        "python": [sys.executable, "-c", "pass"],
        "import_cli": [sys.executable, "-c", "import sg.cli"],
    }
    _, listing = _wall(commands["sgctl"], directory)
    rows = [line for line in listing.decode().splitlines() if seed.BINARY in line]
    assert len(rows) == SGCTL_SERVICES, listing[-500:]
    assert all(" up " in r for r in rows), listing[-500:]
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(SGCTL_RUNS):
        for name, argv in commands.items():
            times[name].append(_wall(argv, directory)[0])
    log(", ".join(f"{k} {median(v) * 1e3:.0f} ms" for k, v in times.items()))
    return {"services": SGCTL_SERVICES, **times}


# -- sg-api ------------------------------------------------------------------------------

API_SERVICES = 1_000
API_WINDOW = 1.5
API_ROUNDS = 5
#: Clients at once for the concurrent figures (each its own keep-alive connection).
API_CONCURRENCY = 8


async def _rate(call: Any, seconds: float, concurrency: int = 1) -> float:
    """Calls per second of ``call`` over ``seconds``, from ``concurrency`` loops at once."""
    done = 0
    began = time.perf_counter()

    async def loop() -> None:
        nonlocal done
        while time.perf_counter() - began < seconds:
            await call()
            done += 1

    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(loop)
    return done / (time.perf_counter() - began)


async def _api_rates(store: str, url: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx.AsyncClient(base_url=url, headers=headers, timeout=60.0) as client,
        sgapi.open_group(store) as group,
    ):
        first = await client.get("/v1/services")
        assert first.status_code == 200, first.text[:300]
        body = first.json()
        rows = body["services"] if isinstance(body, dict) else body
        assert len(rows) == API_SERVICES
        assert all(r["state"] == "up" for r in rows)

        async def listing() -> None:
            r = await client.get("/v1/services")
            assert r.status_code == 200

        etag = first.headers["etag"]

        async def poll() -> None:
            r = await client.get("/v1/services", headers={"If-None-Match": etag})
            assert r.status_code == 304, r.status_code

        async def library() -> None:
            assert len(await sgapi.list_all(group)) == API_SERVICES

        await library()
        # api: one client, one request at a time (200s); api_cN: N clients at once (200s);
        # api_cN_304: N pollers at once sending If-None-Match (304s). lib: list() in a loop.
        conc = API_CONCURRENCY
        rates: dict[str, list[float]] = {"api": [], f"api_c{conc}": [], f"api_c{conc}_304": [], "lib": []}
        for _ in range(API_ROUNDS):
            rates["api"].append(await _rate(listing, API_WINDOW))
            rates[f"api_c{conc}"].append(await _rate(listing, API_WINDOW, conc))
            rates[f"api_c{conc}_304"].append(await _rate(poll, API_WINDOW, conc))
            rates["lib"].append(await _rate(library, API_WINDOW))
        return {"services": API_SERVICES, "body_bytes": len(first.content), "concurrency": conc, **rates}


def api_rate(tmp: Path) -> dict[str, Any]:
    """``GET /v1/services`` of 1,000 on a real sg-api, against the library's own ``list()``."""
    directory = tmp / "api"
    directory.mkdir()
    store = anyio.run(sqlite_with, directory / "services.db", API_SERVICES)
    config = write_config(directory / "sg.toml", store, extra=f'[api]\ntokens = ["{TOKEN}"]')
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        str(BIN / "sg-api"),
        "--config",
        str(config),
        "--listen",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
    ]
    with process(argv, directory / "sg-api.log") as proc:

        def healthy() -> bool:
            assert proc.poll() is None, (directory / "sg-api.log").read_text()[-2000:]
            try:
                return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, 60.0, "sg-api /healthz")
        out = anyio.run(_api_rates, store, url)
    conc = out["concurrency"]
    log(
        f"GET /v1/services {median(out['api']):.1f} req/s (1 client, 200), "
        f"{median(out[f'api_c{conc}']):.1f} req/s ({conc} clients, 200), "
        f"{median(out[f'api_c{conc}_304']):.1f} req/s ({conc} pollers, 304); "
        f"library list() {median(out['lib']):.1f} calls/s ({out['body_bytes'] / 1024:.0f} KiB)"
    )
    return out


# -- sg-agent CPU per beat ------------------------------------------------------------------

AGENT_SERVICES = 10
AGENT_SECONDS = 20.0
AGENT_INTERVAL = 1.0

#: The peer: the same beats as raw UPDATEs from an asyncio loop through aiosqlite.
RAW_BEATER = f"""
import asyncio, sys, time, aiosqlite
NOW = "{seed.SQLITE_NOW}"
async def main(path, n, interval):
    db = await aiosqlite.connect(path, isolation_level=None)
    await db.execute("PRAGMA journal_mode = WAL")
    await db.execute("PRAGMA synchronous = NORMAL")
    hosts = [f"host-{{i:06d}}" for i in range(n)]
    next_at = time.monotonic()
    while True:
        for host in hosts:
            await db.execute(
                f'UPDATE services SET updated_at = {{NOW}}, report_count = report_count + 1 '
                'WHERE host = ? AND "binary" = ?', (host, "{seed.BINARY}"))
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
"""


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (/proc/PID/stat), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each live thread of ``pid``, in nanoseconds' precision (the first
    field of /proc/PID/task/TID/schedstat): /proc/PID/stat counts in clock ticks (10 ms),
    and an agent's 20 s window is only a few of them."""
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            out[int(task.name)] = int((task / "schedstat").read_text().split()[0]) / 1e9
    return out


def cpu_between(before: dict[int, float], after: dict[int, float]) -> float | None:
    """CPU seconds between two :func:`thread_cpu` readings; ``None`` if a thread ended
    in between (its time is gone from the second reading)."""
    if not before.keys() <= after.keys():
        return None
    return sum(after[t] - before.get(t, 0.0) for t in after)


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def reports(db: Path) -> int:
    """Beats recorded in a SQLite file (the sum of ``report_count``)."""
    if not db.exists():
        return 0
    # Read-only: never create the file or the table before the agent does.
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COALESCE(SUM(report_count), 0) FROM services").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # the agent has not created the table yet
    finally:
        conn.close()


def agent_cpu(tmp: Path) -> dict[str, Any]:
    """CPU per beat of a real sg-agent (10 services at 1 s, SQLite + db) and of raw UPDATEs."""
    directory = tmp / "agent"
    directory.mkdir()
    agent_db = directory / "agent.db"
    raw_db = directory / "raw.db"
    services = tuple((seed.host(i), seed.BINARY) for i in range(AGENT_SERVICES))
    config = write_config(
        directory / "agent.toml",
        f"sqlite://{agent_db}",
        report_interval=AGENT_INTERVAL,
        service_down_time=10.0,
        services=services,
    )
    anyio.run(sqlite_with, raw_db, AGENT_SERVICES)
    with (
        process(
            [str(BIN / "sg-agent"), "--config", str(config), "--log-json"], directory / "agent.log"
        ) as agent,
        process(
            [sys.executable, "-c", RAW_BEATER, str(raw_db), str(AGENT_SERVICES), str(AGENT_INTERVAL)],
            directory / "raw.log",
        ) as beater,
    ):
        subjects = {"agent": (agent, agent_db), "raw": (beater, raw_db)}

        def beating() -> bool:
            for name, (proc, _db) in subjects.items():
                assert proc.poll() is None, (
                    f"{name} exited: " + (directory / f"{name}.log").read_text()[-2000:]
                )
            return reports(agent_db) >= 2 * AGENT_SERVICES and reports(raw_db) >= 3 * AGENT_SERVICES

        wait_until(beating, 60.0, "agent and raw beater beating", interval=0.1)
        start = {n: (cpu_seconds(p.pid), reports(db)) for n, (p, db) in subjects.items()}
        threads = {n: thread_cpu(p.pid) for n, (p, _db) in subjects.items()}
        began = time.monotonic()
        rss: dict[str, list[int]] = {n: [] for n in subjects}
        while time.monotonic() - began < AGENT_SECONDS:
            for name, (proc, _) in subjects.items():
                rss[name].append(rss_kib(proc.pid))
            time.sleep(1.0)
        end = {n: (cpu_seconds(p.pid), reports(db)) for n, (p, db) in subjects.items()}
        precise = {n: cpu_between(threads[n], thread_cpu(p.pid)) for n, (p, _db) in subjects.items()}
        elapsed = time.monotonic() - began
    out: dict[str, Any] = {"services": AGENT_SERVICES, "interval": AGENT_INTERVAL, "seconds": elapsed}
    for name in subjects:
        ticks = end[name][0] - start[name][0]
        exact = precise[name]
        cpu = ticks if exact is None else exact
        beats = end[name][1] - start[name][1]
        out[name] = {
            "cpu": cpu,
            "cpu_ticks": ticks,
            "cpu_exact": exact is not None,
            "beats": beats,
            "rss_max_kib": max(rss[name]),
            "rss_end_kib": rss[name][-1],
        }
    log(
        "CPU per beat: "
        + ", ".join(
            f"{n} {v['cpu'] / max(v['beats'], 1) * 1e3:.2f} ms "
            f"({v['beats']} beats, RSS {v['rss_max_kib'] / 1024:.0f} MiB; "
            f"in clock ticks {v['cpu_ticks'] / max(v['beats'], 1) * 1e3:.2f} ms)"
            for n, v in out.items()
            if isinstance(v, dict)
        )
    )
    return out


# -- detection after kill -9 ---------------------------------------------------------------

DETECT_INTERVAL = 1.0
DETECT_DOWN_TIME = 3.0
ZK_SESSION = 2.0
VICTIMS = 3
FLEET = 10
POLL = 0.01


def detection_setups(servers: Servers) -> dict[str, tuple[str, float, str]]:
    """Per driver: its URL, the configured bound on detection, and what sets the bound.

    ZooKeeper expires sessions in buckets of one tick, so a session ends up to one
    tickTime after its timeout: that tick is the server's, and part of the bound.
    """
    tick = servers.zk.tick_time / 1000
    return {
        "db": ("db://", DETECT_DOWN_TIME, f"service_down_time {DETECT_DOWN_TIME:g} s"),
        "memcached": (
            f"memcached://{servers.mc.address}?prefix=sgdetect",
            DETECT_DOWN_TIME,
            f"key TTL = service_down_time {DETECT_DOWN_TIME:g} s",
        ),
        "zookeeper": (
            f"zookeeper://{servers.zk.hosts}/sgdetect?session_timeout={ZK_SESSION:g}",
            ZK_SESSION + tick,
            f"session_timeout {ZK_SESSION:g} s + one {tick:g} s tick",
        ),
    }


async def _detect(
    store: str, driver: str, topic: str, victims: list[tuple[str, subprocess.Popen[bytes]]], bound: float
) -> list[dict[str, Any]]:
    timings = {
        "report_interval": DETECT_INTERVAL,
        "service_down_time": DETECT_DOWN_TIME,
        "driver_timeout": 1.0,
        "store_timeout": 1.0,
    }
    async with sgapi.open_group(store, driver, **timings) as group:

        async def all_up() -> bool:
            statuses = await sgapi.list_all(group)
            mine = [s for s in statuses if s.service.topic == topic]
            return len(mine) == FLEET + VICTIMS and sgapi.count_up(mine) == len(mine)

        deadline = time.monotonic() + 60
        while not await all_up():
            assert time.monotonic() < deadline, "agents not all up within 60 s"
            await anyio.sleep(0.1)
        results = []
        for host, proc in victims:
            service = await sgapi.find(group, host, seed.BINARY)
            proc.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            proc.wait(10)
            # The change happened after the last read that saw up and by the read that saw
            # it: between the start of the call before (``earliest``) and the end of this
            # one (``seconds``). The width of that window is the measure's resolution.
            previous = asked = killed
            while True:
                previous, asked = asked, time.monotonic()
                verdict = await sgapi.verdict(group, service)
                took = time.monotonic() - killed
                if sgapi.state(verdict) != "up" or took > bound + 10:
                    break
                await anyio.sleep(POLL)
            results.append(
                {
                    "seconds": took,
                    "earliest": previous - killed,
                    "state": sgapi.state(verdict),
                    "reason": sgapi.reason(verdict),
                }
            )
        # The fleet stayed up throughout: a lone kill, not a fleet-wide event.
        statuses = [s for s in await sgapi.list_all(group) if s.service.topic == topic]
        results.append({"fleet_up": sgapi.count_up(statuses), "fleet": FLEET})
        return results


def detection(servers: Servers, tmp: Path) -> dict[str, Any]:
    """Per driver: kill -9 one of several real agents, time until its verdict is no longer up."""
    directory = tmp / "detect"
    directory.mkdir()
    store = anyio.run(servers.database, "detect")
    out: dict[str, Any] = {}
    for driver, (url, bound, what) in detection_setups(servers).items():
        topic = f"detect-{driver}"

        def config(
            name: str, services: tuple[tuple[str, str], ...], url: str = url, topic: str = topic
        ) -> Path:
            return write_config(
                directory / f"{name}.toml",
                store,
                url,
                report_interval=DETECT_INTERVAL,
                service_down_time=DETECT_DOWN_TIME,
                services=services,
                topic=topic,
            )

        with contextlib.ExitStack() as stack:
            fleet = config(f"{driver}-fleet", tuple((f"fleet-{i:02d}", seed.BINARY) for i in range(FLEET)))
            stack.enter_context(
                process([str(BIN / "sg-agent"), "--config", str(fleet)], directory / f"{driver}-fleet.log")
            )
            victims = []
            for v in range(VICTIMS):
                host = f"victim-{v}"
                path = config(f"{driver}-{host}", ((host, seed.BINARY),))
                proc = stack.enter_context(
                    process(
                        [str(BIN / "sg-agent"), "--config", str(path)], directory / f"{driver}-{host}.log"
                    )
                )
                victims.append((host, proc))
            results = anyio.run(_detect, store, url, topic, victims, bound)
        fleet_check = results.pop()
        out[driver] = {"bound": bound, "bound_what": what, "trials": results, **fleet_check}
        log(
            f"{driver}: kill -9 to not-up "
            + ", ".join(f"{r['seconds']:.2f} s ({r['state']}/{r['reason']})" for r in results)
            + f" against a bound of {bound:g} s; fleet {fleet_check['fleet_up']}/{FLEET} up after"
        )
    return out
