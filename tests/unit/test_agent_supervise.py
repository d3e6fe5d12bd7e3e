"""agent/daemon.py's supervising loop, in process on the memory backends: what it does
once the agent is ready, with and without systemd to tell (issue 12: its wake-ups and
status lines were a share of the agent's CPU per beat)."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
from structlog.testing import capture_logs

from agent.daemon import Agent
from agent.notify import Notifier
from agent.settings import AgentSettings, ServiceSpec
from sg.config import Settings
from sg.timings import Timings
from tests.support.waiting import eventually

_names = itertools.count()
#: The agent's tick is a fifth of the shortest interval: 0.1 s here.
INTERVAL = 0.5


class CountingAgent(Agent):
    """Counts the status lines it builds."""

    built = 0

    def status_line(self) -> str:
        self.built += 1
        return super().status_line()


def settings() -> AgentSettings:
    name = f"sup{next(_names)}"
    timings = Timings(report_interval=INTERVAL, service_down_time=5 * INTERVAL)
    library = Settings(store=f"memory://{name}", driver="db://", timings=timings)
    services = tuple(ServiceSpec(binary=f"b{i}", topic="t", host="h") for i in range(3))
    return AgentSettings(library, services=services)


def _ready_of(agent: Agent) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return agent._ready

    return probe


async def _run_ready(agent: Agent, after: float) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(agent.run)
        await eventually(_ready_of(agent), bool, 10.0, "the agent ready")
        await anyio.sleep(after)
        agent.stop()


async def test_without_systemd_no_status_line_is_built_after_ready() -> None:
    agent = CountingAgent(settings(), notifier=Notifier(None))
    with capture_logs() as logs:
        # Ten ticks after ready: each built a line for a WATCHDOG or STATUS nobody reads.
        await _run_ready(agent, after=10 * INTERVAL / 5)
    assert agent.built == 1  # the READY line (dropped too, but built once: harmless)
    assert [e["services"] for e in logs if e["event"] == "agent_ready"] == [3]
    assert all(hb.stats.beats >= 2 for hb in agent.heartbeats)


async def test_with_systemd_the_watchdog_and_status_go_on_after_ready(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.setblocking(False)
        agent = CountingAgent(settings(), notifier=Notifier(str(path), watchdog_usec=10 * 1_000_000))
        await _run_ready(agent, after=3 * INTERVAL)
        messages = []
        while True:
            try:
                messages.append(server.recv(4096).decode())
            except BlockingIOError:
                break
    ready = next(i for i, m in enumerate(messages) if "READY=1" in m)
    after = messages[ready + 1 :]
    assert any("WATCHDOG=1" in m for m in after), messages
    assert sum("STATUS=3 services: 3 beating" in m for m in after) >= 2, messages
    assert agent.built >= 3
