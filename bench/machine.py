"""What the benchmarks ran on: hardware, software, servers, load."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.servers import Servers
from sg.testing.zookeeper import four_letter_word

PACKAGES = (
    "servicegroup",
    "anyio",
    "aiosqlite",
    "asyncpg",
    "aiozk",
    "aiomcache",
    "structlog",
    "starlette",
    "uvicorn",
    "httpx",
    "tooz",
    "kazoo",
    "pymemcache",
    "matplotlib",
)


def _cpu_model() -> str:
    text = Path("/proc/cpuinfo").read_text(errors="replace")
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return found.group(1).strip() if found else platform.processor() or "unknown"


def _mem_total() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    return "unknown"


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        return f"unknown ({exc})"
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else "unknown"


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def describe(servers: Servers) -> dict[str, Any]:
    """Everything the report's machine section says; needs the servers running."""
    zk = next(
        (
            line.split(":", 1)[1].strip()
            for line in four_letter_word(servers.zk.port, "srvr").splitlines()
            if line.startswith("Zookeeper version")
        ),
        "unknown",
    )
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    zk = zk.replace("-${mvngit.commit.id}", "")  # Debian's build leaves the placeholder in
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "branch": _git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--", "sg", "agent")),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory": _mem_total(),
        "kernel": platform.release(),
        "os": _first_line(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python": sys.version.split()[0],
        "postgresql": _first_line([str(servers.pg.bindir / "postgres"), "--version"]),
        "memcached": _first_line([servers.mc.binary, "-V"]),
        "zookeeper": zk,
        "java": _first_line(["java", "-version"]),
        "packages": versions,
        "load_start": load(),
    }
