"""The fleet drill (issue 11, part 4): fleet-wide events under real load, scored.

``python -m bench.drill [--heartbeats 2000] [--processes 20] [--quick]`` (``make drill``).

A few worker processes each open one :class:`~sg.ServiceGroup` and hold many
``group.join(...)`` heartbeats at a 1 s interval; a reader in this process samples
``group.list()`` every 0.2 s (:class:`~sg.testing.sampler.VerdictSampler`). Two
variants, each on PostgreSQL records:

- ``zookeeper``: a 3-server ZooKeeper ensemble as the driver. Events in turn:
  ``kill -9`` of 5 % of the processes, a PostgreSQL outage of 2.5 x
  ``service_down_time``, the ZooKeeper leader killed.
- ``memcached``: one memcached as the driver. Events: ``kill -9`` of 5 % of the
  processes, the PostgreSQL outage, a memcached restart.

Per event it counts false ``up`` (a killed service read up after its bound), false
``down`` (a live service read down) and ``unknown`` readings (service x sample),
and the detection time of every killed service against its bound. It writes
``docs/drill.md`` and a timeline ``docs/drill.png`` (matplotlib). Servers are
private, on loopback; every process is stopped by the pid this script started.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.to_thread

from sg import ServiceGroup
from sg.logsetup import configure_logging
from sg.model import ServiceKey
from sg.testing.ensemble import ZooKeeperEnsemble
from sg.testing.memcached import MemcachedServer
from sg.testing.sampler import Tally, VerdictSampler
from sg.testing.servers import PostgresServer

REPORT_INTERVAL = 1.0
SERVICE_DOWN_TIME = 4.0
ZK_SESSION_TIMEOUT = 3.0
BACKEND_TIMEOUT = 2.0
SAMPLE_INTERVAL = 0.2
KILL_SHARE = 0.05
OUTAGE_FACTOR = 2.5
#: How long the whole fleet may take to read up before the events start.
STARTUP_TIMEOUT = 120.0
#: Slack on every detection bound: one sample interval, scheduling on a loaded
#: 2-core machine, and (memcached) the server's one-second expiry clock.
MARGIN = 1.0
BINARY, TOPIC = "sg-drill", "drill"
ROOT = Path(__file__).resolve().parent.parent


# -- the worker process ------------------------------------------------------------------


async def _hold(group: ServiceGroup, host: str) -> None:
    async with group.join(BINARY, TOPIC, host=host):
        await anyio.sleep_forever()


async def worker(store: str, driver: str, prefix: str, count: int) -> None:
    """Hold ``count`` heartbeats (hosts ``<prefix>-<i>``) in one group until killed."""
    async with (
        ServiceGroup.from_urls(
            store,
            driver,
            report_interval=REPORT_INTERVAL,
            service_down_time=SERVICE_DOWN_TIME,
            store_timeout=BACKEND_TIMEOUT,
            driver_timeout=BACKEND_TIMEOUT,
        ) as group,
        anyio.create_task_group() as tg,
    ):
        for i in range(count):
            tg.start_soon(_hold, group, f"{prefix}-{i}")


# -- the controller ---------------------------------------------------------------------


@dataclass
class Worker:
    """One worker process and the services it holds."""

    proc: subprocess.Popen[bytes]
    keys: list[ServiceKey]


@dataclass
class Event:
    """One event's window (monotonic) and what it measured."""

    name: str
    start: float
    end: float = 0.0
    tally: Tally = field(default_factory=Tally)
    #: Killed services: key -> (detection seconds or None, bound seconds).
    detections: dict[ServiceKey, tuple[float | None, float]] = field(default_factory=dict)
    #: Seconds from the fault's end (server back, leader elected) to every live service up.
    recovered_in: float | None = None
    note: str = ""


@dataclass
class Variant:
    """One drill variant: its driver, its events, its samples."""

    name: str
    driver_label: str
    t0: float = 0.0
    events: list[Event] = field(default_factory=list)
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)
    startup: float = 0.0
    #: Why the events did not run (the fleet never came up), if they did not.
    failed: str | None = None
    #: Untranslated exceptions the reader's ``list()`` raised, counted.
    reader_errors: Counter[str] = field(default_factory=Counter)
    #: From the workers' logs: beats that crashed (an untranslated exception), and the
    #: exception types that ended their tracebacks.
    beat_crashes: int = 0
    crash_types: Counter[str] = field(default_factory=Counter)


class Drill:
    """Run one variant: start workers, run its events, score them."""

    def __init__(self, args: argparse.Namespace, workdir: Path, pg: PostgresServer) -> None:
        self.args = args
        self.workdir = workdir
        self.pg = pg
        self.workers: list[Worker] = []
        self.rng = random.Random(args.seed)

    def start_workers(self, store: str, driver: str, tag: str) -> list[ServiceKey]:
        per = self.args.heartbeats // self.args.processes
        extra = self.args.heartbeats % self.args.processes
        keys: list[ServiceKey] = []
        for p in range(self.args.processes):
            count = per + (p < extra)
            prefix = f"{tag}{p:02d}"
            log = (self.workdir / f"{tag}-worker{p}.log").open("wb")
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.drill", "worker", store, driver, prefix, str(count)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
            )
            log.close()
            mine = [ServiceKey(f"{prefix}-{i}", BINARY) for i in range(count)]
            self.workers.append(Worker(proc, mine))
            keys += mine
        return keys

    def stop_workers(self) -> None:
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGKILL)
            w.proc.wait(10)
        self.workers.clear()

    async def wait_live_up(self, sampler: VerdictSampler, since: float, timeout: float) -> float | None:
        """Wait for a sample begun after ``since`` with every live service up; return
        the seconds from ``since`` to that sample's end (None: not within timeout)."""
        live = len([k for k in sampler.expected if sampler.alive(k)])
        deadline = time.monotonic() + timeout
        seen = len(sampler.samples)
        while time.monotonic() < deadline:
            for sample in sampler.samples[seen:]:
                if sample.started >= since and sample.up >= live and sample.error is None:
                    return sample.ended - since
            seen = len(sampler.samples)
            await anyio.sleep(SAMPLE_INTERVAL / 2)
        return None

    async def settle(self) -> None:
        # Scenario length, not synchronisation: two beats of samples after recovery.
        await anyio.sleep(2 * REPORT_INTERVAL)

    async def kill9(self, sampler: VerdictSampler, bound: float) -> Event:
        alive = [w for w in self.workers if w.proc.poll() is None]
        n = max(1, math.ceil(KILL_SHARE * len(alive)))
        victims = self.rng.sample(alive, n)
        event = Event(f"kill -9 of {n}/{len(alive)} processes", time.monotonic())
        for w in victims:
            at = time.monotonic()
            for key in w.keys:
                sampler.killed(key, bound, at=at)
            w.proc.send_signal(signal.SIGKILL)
            w.proc.wait(10)
        killed = [k for w in victims for k in w.keys]
        deadline = time.monotonic() + bound + 10
        while time.monotonic() < deadline and any(k not in sampler.detected for k in killed):
            await anyio.sleep(SAMPLE_INTERVAL / 2)
        await self.settle()
        event.end = time.monotonic()
        event.detections = {k: (sampler.detected.get(k), bound) for k in killed}
        event.note = f"{len(killed)} services killed"
        return event

    async def fault(
        self,
        sampler: VerdictSampler,
        name: str,
        act: Callable[[], Awaitable[float]],
    ) -> Event:
        """Run ``act`` (returns when the fault is over), then wait for every live
        service up and settle."""
        event = Event(name, time.monotonic())
        over = await act()
        event.recovered_in = await self.wait_live_up(sampler, over, 60)
        await self.settle()
        event.end = time.monotonic()
        return event

    async def pg_outage(self) -> float:
        await anyio.to_thread.run_sync(self.pg.stop_server)
        # Scenario length: the outage itself.
        await anyio.sleep(OUTAGE_FACTOR * SERVICE_DOWN_TIME)
        await anyio.to_thread.run_sync(self.pg.start_server)
        return time.monotonic()

    async def run(
        self,
        variant: Variant,
        store: str,
        driver: str,
        kill_bound: float,
        driver_event: tuple[str, Callable[[], Awaitable[float]]],
    ) -> None:
        keys = self.start_workers(store, driver, variant.name[:2])
        try:
            async with ServiceGroup.from_urls(
                store,
                driver,
                report_interval=REPORT_INTERVAL,
                service_down_time=SERVICE_DOWN_TIME,
                store_timeout=BACKEND_TIMEOUT,
                driver_timeout=BACKEND_TIMEOUT,
            ) as group:
                sampler = VerdictSampler(group, interval=SAMPLE_INTERVAL, topic=TOPIC, expected=keys)
                variant.t0 = time.monotonic()
                async with anyio.create_task_group() as tg:
                    await tg.start(sampler.run)
                    up = await self.wait_live_up(sampler, variant.t0, STARTUP_TIMEOUT)
                    if up is None:
                        best = max((s.up for s in sampler.samples), default=0)
                        variant.failed = (
                            f"the fleet never read all up within {STARTUP_TIMEOUT:g}s (at best {best} of "
                            f"{len(keys)} up in one sample); worker logs in {self.workdir}"
                        )
                        print(f"[{variant.name}] {variant.failed}", flush=True)
                        events = []
                    else:
                        variant.startup = up
                        await self.settle()
                        print(f"[{variant.name}] {len(keys)} heartbeats up in {up:.1f}s", flush=True)
                        events = [
                            lambda: self.kill9(sampler, kill_bound),
                            lambda: self.fault(
                                sampler,
                                f"PostgreSQL outage {OUTAGE_FACTOR:g} x service_down_time",
                                self.pg_outage,
                            ),
                            lambda: self.fault(sampler, driver_event[0], driver_event[1]),
                        ]
                    for start_event in events:
                        event = await start_event()
                        event.tally = sampler.tally(event.start, event.end)
                        variant.events.append(event)
                        print(f"[{variant.name}] {event.name}: {event.tally}", flush=True)
                    tg.cancel_scope.cancel()
                variant.samples = [(s.started - variant.t0, s.up, s.unknown, s.down) for s in sampler.samples]
                variant.reader_errors = Counter(e.split(":")[0] for e in sampler.unexpected_errors())
        finally:
            self.stop_workers()
            self.scan_logs(variant, variant.name[:2])

    def scan_logs(self, variant: Variant, tag: str) -> None:
        """Count crashed beats and their exception types in the workers' JSON logs."""
        for log in self.workdir.glob(f"{tag}-worker*.log"):
            for line in log.read_text(errors="replace").splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(event, dict) or event.get("event") != "beat_crashed":
                    continue
                variant.beat_crashes += 1
                last = str(event.get("exception", "")).strip().splitlines()[-1:] or ["?"]
                variant.crash_types[last[0].split(":")[0]] += 1


async def create_database(pg: PostgresServer, name: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(pg.url(), timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return pg.url(name)


async def drill(args: argparse.Namespace) -> list[Variant]:
    workdir = Path(tempfile.mkdtemp(prefix="sg-drill-"))
    print(f"drill: logs in {workdir}", flush=True)
    variants: list[Variant] = []
    with PostgresServer() as pg:
        d = Drill(args, workdir, pg)
        if "zookeeper" in args.variants:
            with ZooKeeperEnsemble(3) as zk:
                store = await create_database(pg, "drill_zk")
                driver = zk.url("drill", session_timeout=ZK_SESSION_TIMEOUT)

                async def leader_killed() -> float:
                    old, _ = await anyio.to_thread.run_sync(zk.kill_leader)
                    _, elected = await anyio.to_thread.run_sync(zk.wait_new_leader, old)
                    # Back to three members, so the ensemble ends whole.
                    await anyio.to_thread.run_sync(zk.start_member, old)
                    return elected

                v = Variant("zookeeper", f"ZooKeeper ensemble of 3, session_timeout={ZK_SESSION_TIMEOUT:g}s")
                await d.run(
                    v, store, driver, ZK_SESSION_TIMEOUT + MARGIN, ("ZooKeeper leader killed", leader_killed)
                )
                variants.append(v)
        if "memcached" in args.variants:
            with MemcachedServer() as mc:
                store = await create_database(pg, "drill_mc")
                driver = f"memcached://{mc.address}?prefix=drill"

                async def restarted() -> float:
                    await anyio.to_thread.run_sync(mc.restart)
                    return time.monotonic()

                v = Variant("memcached", "one memcached (key TTL = service_down_time)")
                # The key expires between TTL-1 and TTL s (memcached's clock ticks once a
                # second) and the record goes stale at service_down_time: the later wins.
                await d.run(v, store, driver, SERVICE_DOWN_TIME + MARGIN, ("memcached restart", restarted))
                variants.append(v)
    return variants


# -- the report ---------------------------------------------------------------------------


def detection_summary(event: Event) -> tuple[str, str, str]:
    if not event.detections:
        return "", "", ""
    times = [d for d, _ in event.detections.values() if d is not None]
    bound = max(b for _, b in event.detections.values())
    within = sum(1 for d, b in event.detections.values() if d is not None and d <= b)
    spread = (
        f"{min(times):.2f} / {statistics.median(times):.2f} / {max(times):.2f}" if times else "none detected"
    )
    return f"{within}/{len(event.detections)}", spread, f"{bound:.1f}"


def write_report(variants: list[Variant], args: argparse.Namespace, elapsed: float, out: Path) -> None:
    png = out / "drill.png"
    plot(variants, png)
    lines = [
        "# Fleet drill",
        "",
        "Generated by `python -m bench.drill "
        + " ".join(args.argv)
        + "` (`make drill`); issue 11, part 4. Do not edit by hand.",
        "",
        f"- {args.heartbeats} embedded heartbeats (`group.join`) over {args.processes} worker processes "
        f"(one ServiceGroup each), report_interval={REPORT_INTERVAL:g}s, "
        f"service_down_time={SERVICE_DOWN_TIME:g}s, store/driver timeouts {BACKEND_TIMEOUT:g}s.",
        f"- Records in PostgreSQL (a private cluster on loopback); a reader samples `group.list()` "
        f"every {SAMPLE_INTERVAL:g}s.",
        f"- Machine: {platform.platform()}, Python {platform.python_version()}, "
        f"{_cpus()} CPUs shared with other work; wall time {elapsed:.0f}s.",
        "",
        "Counts are service readings (services x samples) within each event's window, from the "
        "fault to two beats after every live service read up again. A **false down** is a live "
        "service read `down`; a **false up** is a killed service read `up` after its detection "
        "bound; **unknown** includes every service of a sample whose `list()` failed.",
        "",
    ]
    for v in variants:
        lines += [
            f"## {v.name}: {v.driver_label}",
            "",
            f"Fleet up {v.startup:.1f}s after the workers started."
            if v.failed is None
            else f"**No events ran**: {v.failed}.",
            "",
        ]
        if v.failed is not None:
            continue
        lines += [
            f"Untranslated exceptions: the reader's `list()` raised {_counted(v.reader_errors)}; "
            f"the workers logged {v.beat_crashes} `beat_crashed` events (tracebacks ending in "
            f"{_counted(v.crash_types)}).",
            "",
            "| event | window s | samples | false up | false down | unknown | failed reads "
            "| all live up after (s) | killed detected within bound | detection min / median / max s "
            "| bound s |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for e in v.events:
            within, spread, bound = detection_summary(e)
            rec = "" if e.detections else ("never" if e.recovered_in is None else f"{e.recovered_in:.2f}")
            lines.append(
                f"| {e.name} | {e.end - e.start:.1f} | {e.tally.samples} | {e.tally.false_up} | "
                f"{e.tally.false_down} | {e.tally.unknown} | {e.tally.failed_reads} | {rec} | {within} | "
                f"{spread} | {bound} |"
            )
        lines.append("")
        for e in v.events:
            reasons = Counter({k: n for k, n in e.tally.reasons.items() if not k.startswith("unknown/")})
            unknown = Counter({k: n for k, n in e.tally.reasons.items() if k.startswith("unknown/")})
            if reasons or unknown:
                parts = ", ".join(f"`{k}` {n}" for k, n in (reasons + unknown).most_common())
                lines.append(f"- {e.name}: {parts}")
        lines.append("")
        for e in v.events:
            if not e.detections:
                continue
            lines += [
                f"<details><summary>{v.name}, {e.name}: detection of every killed service</summary>",
                "",
                "| service | detected after s | bound s | within |",
                "|---|---|---|---|",
            ]
            for key, (d, b) in sorted(e.detections.items()):
                shown = "never" if d is None else f"{d:.2f}"
                ok = "yes" if d is not None and d <= b else "**no**"
                lines.append(f"| {key.host} | {shown} | {b:.1f} | {ok} |")
            lines += ["", "</details>", ""]
    lines += [
        f"![timeline: up / unknown / down per sample]({png.name})",
        "",
        "The false downs in the outage events are today's verdict: a record that went stale "
        "because the store could not be written, or a driver member lost by the server, reads "
        "`down` until the service's next beat lands. The guards of issue 11 (`store_recovering`, "
        "`driver_recovering`, `mass_stale`) are to turn them into `unknown`.",
        "",
    ]
    (out / "drill.md").write_text("\n".join(lines))


def _counted(counter: Counter[str]) -> str:
    if not counter:
        return "none"
    return ", ".join(f"`{name}` x{n}" for name, n in counter.most_common())


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


def plot(variants: list[Variant], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(variants), 1, figsize=(11, 3.2 * len(variants)), squeeze=False)
    for ax, v in zip(axes[:, 0], variants, strict=True):
        t = [s[0] for s in v.samples]
        ax.stackplot(
            t,
            [s[1] for s in v.samples],
            [s[2] for s in v.samples],
            [s[3] for s in v.samples],
            labels=["up", "unknown", "down"],
            colors=["#4caf50", "#ffb300", "#e53935"],
            step="post",
        )
        if v.events:
            ax.text(0, ax.get_ylim()[1] * 0.98, "startup (no records yet)", fontsize=7, va="top")
        for e in v.events:
            ax.axvspan(e.start - v.t0, e.end - v.t0, color="#90a4ae", alpha=0.15)
            ax.text(e.start - v.t0, ax.get_ylim()[1] * 0.98, e.name, fontsize=7, va="top", rotation=0)
        ax.set_title(f"{v.name}: {v.driver_label}", fontsize=9)
        ax.set_xlabel("seconds")
        ax.set_ylabel("services")
        ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> int:
    if argv[:1] == ["worker"]:
        store, driver, prefix, count = argv[1:5]
        # As sg-agent runs under systemd: JSON lines (tracebacks as one field).
        configure_logging("info", json=True)
        anyio.run(worker, store, driver, prefix, int(count))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.drill", description=__doc__.splitlines()[0])
    parser.add_argument("--heartbeats", type=int, default=2000, help="embedded heartbeats in all (2000)")
    parser.add_argument("--processes", type=int, default=20, help="worker processes (20)")
    parser.add_argument("--quick", action="store_true", help="200 heartbeats over 8 processes (~3 min)")
    parser.add_argument(
        "--variants", default="zookeeper,memcached", help="comma-separated: zookeeper, memcached"
    )
    parser.add_argument("--seed", type=int, default=11, help="which processes the kill -9 picks")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where drill.md and drill.png go")
    args = parser.parse_args(argv)
    args.argv = argv
    if args.quick:
        args.heartbeats, args.processes = 200, 8
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(args.variants) - {"zookeeper", "memcached"}
    if unknown:
        parser.error(f"--variants: unknown {sorted(unknown)}; choose zookeeper, memcached")
    if args.processes < 1 or args.heartbeats < args.processes:
        parser.error("--heartbeats must be >= --processes >= 1")
    began = time.monotonic()
    variants = anyio.run(drill, args)
    args.out.mkdir(parents=True, exist_ok=True)
    write_report(variants, args, time.monotonic() - began, args.out)
    print(f"wrote {args.out / 'drill.md'} and {args.out / 'drill.png'}")
    return 1 if any(v.failed for v in variants) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
