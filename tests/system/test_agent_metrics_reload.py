"""A service removed by a reload leaves no series in the agent's /metrics, its
latency histogram included (issue 10, defect 15)."""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from sg.testing import free_port
from tests.support.daemon_harness import AgentProcess, NotifySocket, agent_config
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


def svc(binary: str) -> dict[str, Any]:
    return {"host": "h1", "binary": binary, "topic": "m15"}


async def test_a_removed_service_has_no_series_left(tmp_path: Path) -> None:
    path = tmp_path / "sg.toml"
    metrics = f"127.0.0.1:{free_port()}"

    def write(binaries: list[str]) -> None:
        agent_config(
            path,
            f"sqlite://{tmp_path}/s.db",
            [svc(b) for b in binaries],
            report_interval=0.2,
            service_down_time=2.0,
            metrics_listen=metrics,
        )

    async def series() -> dict[str, set[str]]:
        """binary -> the metric names with a series for it."""
        try:
            text = httpx.get(f"http://{metrics}/metrics", timeout=2.0).text
        except httpx.TransportError:
            return {}
        out: dict[str, set[str]] = {}
        for name, binary in re.findall(r'^(\w+)\{[^}]*binary="([^"]+)"', text, re.MULTILINE):
            out.setdefault(binary, set()).add(name)
        return out

    write(["sg-keep", "sg-gone"])
    notify = NotifySocket()
    agent = AgentProcess(path, tmp_path / "agent.log", notify)
    try:
        await notify.wait_for("READY", timeout=15)
        seen, _ = await eventually(
            series,
            lambda s: "sg_agent_beat_duration_seconds_count" in s.get("sg-gone", set()),
            15,
            "sg-gone's latency histogram exported",
        )
        assert "sg_agent_beats_total" in seen["sg-gone"]
        write(["sg-keep"])
        agent.signal(signal.SIGHUP)
        reloaded = await agent.wait_for_event("reloaded")
        assert reloaded["removed"] == ["sg-gone"]
        after = await series()
        assert "sg-gone" not in after, after["sg-gone"]  # on main: the histogram stayed
        assert "sg_agent_beat_duration_seconds_count" in after["sg-keep"]
    finally:
        agent.kill()
        notify.close()
