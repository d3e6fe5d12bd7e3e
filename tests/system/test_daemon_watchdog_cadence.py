"""The watchdog is pinged on each service's own cadence: a service beating every 3 s
under a 2 s watchdog no longer gets the agent killed (issue 10, defect 7)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from sg import ServiceGroup
from tests.support.daemon_harness import AgentProcess, NotifySocket, agent_config
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

WATCHDOG = 2.0
SLOW = 3.0


async def test_a_slow_service_does_not_starve_a_shorter_watchdog(tmp_path: Path) -> None:
    store = f"sqlite://{tmp_path}/s.db"
    config = agent_config(
        tmp_path / "sg.toml",
        store,
        [
            {"host": "h1", "binary": "sg-fast", "topic": "wd"},
            {"host": "h1", "binary": "sg-slow", "topic": "wd", "report_interval": SLOW},
        ],
        report_interval=0.3,
        service_down_time=10.0,
    )
    notify = NotifySocket()
    agent = AgentProcess(config, tmp_path / "agent.log", notify, watchdog_usec=int(WATCHDOG * 1_000_000))
    try:
        ready = await notify.wait_for("READY", timeout=20)
        async with ServiceGroup.from_urls(store, report_interval=0.3, service_down_time=10.0) as group:

            async def slow_beats() -> int:
                return (await group.get("h1", "sg-slow")).service.report_count

            # Three more slow beats: about two slow intervals of pings to look at.
            first = await slow_beats()
            await eventually(slow_beats, lambda n: n >= first + 3, 4 * SLOW + 10, "three slow beats")
        pings = [t for t, _ in notify.with_key("WATCHDOG", since=ready)]
        assert len(pings) >= 2, pings
        gaps = [b - a for a, b in itertools.pairwise([ready, *pings])]
        # Every gap well under the watchdog: on main a ping waited for the slow service's
        # beat, about every 3 s, and systemd would have killed the agent after 2 s.
        assert max(gaps) < WATCHDOG, gaps
        assert agent.proc.poll() is None
    finally:
        agent.kill()
        notify.close()
