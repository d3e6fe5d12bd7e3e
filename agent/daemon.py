"""The agent: one heartbeat per configured service, until SIGTERM or SIGINT.

On a stop signal every service leaves (so it reads ``down`` at once) and the
process exits 0 within about a second, even if a backend hangs: leaving and
closing are each bounded.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

import anyio
import structlog
from anyio import CancelScope

from sg.config import Settings
from sg.errors import ConfigError
from sg.group import ServiceGroup
from sg.heartbeat import Heartbeat

if TYPE_CHECKING:
    from agent.metrics import AgentMetrics

__all__ = ["Agent"]

log = structlog.get_logger("agent")

#: Bound on closing the backends after every service has left.
CLOSE_TIMEOUT = 0.5


def _metrics(settings: Settings) -> AgentMetrics | None:
    """The agent's metrics when ``metrics_listen`` is set (issue #5); needs prometheus-client."""
    if settings.metrics_listen is None:
        return None
    try:
        from agent.metrics import AgentMetrics
    except ImportError as exc:
        raise ConfigError("metrics_listen needs prometheus-client: pip install 'servicegroup[api]'") from exc
    return AgentMetrics()


class Agent:
    """Runs the heartbeats of ``settings.services``."""

    def __init__(self, settings: Settings) -> None:
        if not settings.services:
            where = settings.source or "the configuration"
            raise ConfigError(f"{where}: no [[service]] tables; the agent has nothing to report")
        self.settings = settings
        # Built now, so a bad URL or a missing extra is a configuration error at start-up.
        self.group = ServiceGroup.from_settings(settings)
        self.heartbeats: list[Heartbeat] = []
        self.stopping = anyio.Event()
        self.metrics = _metrics(settings)  # metrics (issue #5)

    async def run(self) -> None:
        """Beat until a stop signal; then leave every service and return."""
        group = self.group
        log.info(
            "agent_starting",
            store=group.store.name,
            driver=group.driver.name,
            services=len(self.settings.services),
            report_interval=self.settings.report_interval,
            service_down_time=self.settings.service_down_time,
        )
        await group.__aenter__()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._wait_for_signal, tg.cancel_scope)
                if self.metrics is not None and self.settings.metrics_listen:  # metrics (issue #5)
                    await tg.start(self.metrics.serve, self.settings.metrics_listen)
                observer = self.metrics.observe if self.metrics is not None else None  # metrics (issue #5)
                for spec in self.settings.services:
                    hb = group.heartbeat(spec, observer=observer)
                    self.heartbeats.append(hb)
                    tg.start_soon(hb.run)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIMEOUT):
                await group.aclose()
            log.info("agent_stopped")

    async def _wait_for_signal(self, scope: CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("agent_stopping", signal=signal.Signals(signum).name)
                self.stopping.set()
                scope.cancel()
                return
