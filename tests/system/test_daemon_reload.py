"""SIGHUP: the real agent re-reads its config; a broken config is refused and the
running one kept."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from sg import ServiceGroup
from sg.model import ServiceStatus
from sg.testing import free_port
from tests.support.daemon_harness import AgentProcess, NotifySocket, agent_config
from tests.support.waiting import eventually

INTERVAL = 0.3
DOWN_TIME = 15.0  # allows the 5 s interval below (2.5 x rule)
SLOW = 5.0


def svc(binary: str, **extra: Any) -> dict[str, Any]:
    return {"host": "h1", "binary": binary, "topic": "reload", **extra}


async def test_sighup_adds_removes_and_changes_services_and_refuses_a_broken_config(tmp_path: Path) -> None:
    store = f"sqlite://{tmp_path}/s.db"
    path = tmp_path / "sg.toml"
    metrics = f"127.0.0.1:{free_port()}"

    def write(services: list[dict[str, Any]], **settings: Any) -> None:
        agent_config(
            path,
            store,
            services,
            report_interval=INTERVAL,
            service_down_time=DOWN_TIME,
            metrics_listen=metrics,
            **settings,
        )

    def exported() -> set[str]:
        """The binaries the agent's /metrics has a beat counter for."""
        text = httpx.get(f"http://{metrics}/metrics", timeout=2.0).text
        return set(re.findall(r'^sg_agent_beats_total\{[^}]*binary="([^"]+)"', text, re.MULTILINE))

    write([svc("sg-a"), svc("sg-b", report_interval=SLOW), svc("sg-c", version=1), svc("sg-f")])
    notify = NotifySocket()
    agent = AgentProcess(path, tmp_path / "agent.log", notify)
    try:
        async with ServiceGroup.from_urls(
            store, report_interval=INTERVAL, service_down_time=DOWN_TIME
        ) as group:

            async def states() -> dict[str, ServiceStatus]:
                return {s.service.binary: s for s in await group.list(topic="reload")}

            await notify.wait_for("READY", timeout=15)
            await eventually(states, lambda st: len(st) == 4 and all(s.is_up for s in st.values()), 10, "up")
            assert exported() == {"sg-a", "sg-b", "sg-c", "sg-f"}

            # sg-a removed, sg-b's interval 5 s -> 0.3 s, sg-c's version 1 -> 2, sg-d added,
            # sg-f gets a check that fails.
            write([svc("sg-b"), svc("sg-c", version=2), svc("sg-d"), svc("sg-f", check="exec:false")])
            hup = time.monotonic()
            agent.signal(signal.SIGHUP)
            reloaded = await agent.wait_for_event("reloaded")
            assert reloaded["removed"] == ["sg-a"]
            assert reloaded["added"] == ["sg-d"]
            assert reloaded["replaced"] == ["sg-c"]
            assert reloaded["updated"] == ["sg-b", "sg-f"]
            reloading = await notify.wait_for("RELOADING", since=hup)
            assert await notify.wait_for("READY", since=reloading) > reloading

            st, _ = await eventually(
                states,
                lambda st: (
                    len(st) == 5
                    and not st["sg-a"].is_up
                    # A new record reads never_reported until the failure is stored.
                    and st["sg-f"].verdict.reason == "check_failed"
                    and st["sg-c"].service.version == 2
                    and all(st[n].is_up for n in ("sg-b", "sg-c", "sg-d"))
                ),
                10,
                "sg-a left, sg-c at version 2, sg-b/c/d up",
            )
            assert st["sg-a"].verdict.reason == "left"
            assert st["sg-f"].verdict.reason == "check_failed"
            assert st["sg-f"].service.check_failure == "exec:false: exit status 1"
            # The metrics follow the reload: no series for the removed service.
            assert exported() == {"sg-b", "sg-c", "sg-d", "sg-f"}
            # The new interval applies: at 5 s there could be at most one beat (the
            # reload's own) in the next 2.5 s; at 0.3 s there are several.
            count = st["sg-b"].service.report_count
            await eventually(
                states, lambda st: st["sg-b"].service.report_count >= count + 4, 2.5, "sg-b beats every 0.3 s"
            )

            # A broken config (an unknown check kind) is refused; the old one keeps running.
            path.write_text(
                path.read_text() + '\n[[service]]\nbinary = "sg-e"\ntopic = "reload"\ncheck = "ping:x"\n'
            )
            agent.signal(signal.SIGHUP)
            refused = await agent.wait_for_event("reload_refused")
            assert "sg-e" in refused["error"]
            assert "unknown check kind 'ping'" in refused["error"]
            # Invalid TOML too.
            path.write_text("store = \n")
            agent.signal(signal.SIGHUP)
            refused = await agent.wait_for_event("reload_refused", count=2)
            assert "not valid TOML" in refused["error"]
            # A changed metrics listener needs a restart: refused as well. (A changed
            # driver is a driver roll: tests/system/test_driver_roll.py.)
            write([svc("sg-b")])
            path.write_text(path.read_text().replace(metrics, f"127.0.0.1:{free_port()}"))
            agent.signal(signal.SIGHUP)
            refused = await agent.wait_for_event("reload_refused", count=3)
            assert "metrics_listen needs a restart" in refused["error"]

            counts = {n: s.service.report_count for n, s in (await states()).items()}
            st, _ = await eventually(
                states,
                lambda st: all(st[n].service.report_count >= counts[n] + 2 for n in ("sg-b", "sg-c", "sg-d")),
                5,
                "the running services keep beating",
            )
            assert all(st[n].is_up for n in ("sg-b", "sg-c", "sg-d"))
            assert "sg-e" not in st
            assert not st["sg-a"].is_up
            assert len(agent.events("reloaded")) == 1

            agent.signal(signal.SIGTERM)
            assert await agent.wait_exit(5) == 0
    finally:
        agent.kill()
        notify.close()
