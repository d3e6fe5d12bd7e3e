"""Run the real console scripts (sg-agent, sgctl) as child processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def script(name: str) -> str:
    """Path of an installed console script of this environment."""
    path = BIN / name
    assert path.exists(), f"{name} is not installed in {BIN} (pip install -e .)"
    return str(path)


def write_config(
    path: Path,
    store: str,
    driver: str = "db://",
    *,
    report_interval: float = 0.2,
    service_down_time: float = 1.0,
    services: tuple[tuple[str, str, str], ...] = (("h1", "sg-e2e", "e2e"),),
    extra: str = "",
) -> Path:
    """A TOML config for the agent and sgctl."""
    lines = [
        f"store = {json.dumps(store)}",
        f"driver = {json.dumps(driver)}",
        f"report_interval = {report_interval}",
        f"service_down_time = {service_down_time}",
        extra,
    ]
    for host, binary, topic in services:
        lines += [
            "[[service]]",
            f"host = {json.dumps(host)}",
            f"binary = {json.dumps(binary)}",
            f"topic = {json.dumps(topic)}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def clean_env() -> dict[str, str]:
    """The environment without SG_* settings that could leak into a test."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SG_")}


@contextmanager
def agent(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start sg-agent; on exit kill it (by its pid) if the test did not stop it."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [script("sg-agent"), "--config", str(config)], stdout=out, stderr=out, env=clean_env()
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def sgctl(*args: str, config: Path | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run sgctl and capture its output."""
    argv = [script("sgctl")]
    if config is not None:
        argv += ["--config", str(config)]
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=timeout, env=clean_env())


def sgctl_json(*args: str, config: Path) -> Any:
    """Run sgctl with --json and parse its output; fail on a non-zero exit."""
    done = sgctl(*args, "--json", config=config)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
