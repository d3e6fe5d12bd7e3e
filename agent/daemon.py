"""The agent: one heartbeat per configured service, under systemd's eye.

- Each ``[[service]]`` runs in its own task (a :class:`ServiceRunner`), gated by
  its local health check when it names one (``agent/checks.py``).
- systemd is told (``agent/notify.py``) ``READY=1`` once every service has had a
  good first round, ``WATCHDOG=1`` while every service keeps its own cadence (a
  good round since the previous ping, or one within twice its own report
  interval; none while the store is unreachable, so a hung or failing agent is
  restarted), and ``STATUS=`` lines.
- SIGHUP re-reads the configuration: services join, leave or change; a
  configuration with an error is refused with a log line and the running one kept.
- SIGTERM or SIGINT: ``STOPPING=1``, every service leaves (bounded), and ``run``
  returns. A second signal is logged and ignored; ``on_stop`` lets the entry
  point arm a hard deadline for backends that hang even their close.

A good round is a successful beat, or, while a service's check fails, the
failure recorded in the store and the driver member removed: the agent is then
doing its job, and systemd must not restart it for a service that is down.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import anyio
import structlog
from anyio.abc import TaskGroup

from agent.checks import build_check, damped
from agent.notify import Notifier
from agent.settings import AgentSettings, ServiceSpec, load_agent_settings
from sg.backends import load_driver
from sg.drivers.base import Driver
from sg.errors import BackendUnavailable, ConfigError
from sg.group import ServiceGroup
from sg.heartbeat import BeatObserver, Gate, Heartbeat
from sg.model import ServiceKey
from sg.timings import Timings

if TYPE_CHECKING:
    from agent.metrics import AgentMetrics

__all__ = ["Agent", "ServiceRunner"]

log = structlog.get_logger("agent")

#: Bound on one service's leave at stop or removal. With CLOSE_TIMEOUT it keeps a
#: clean stop under one second.
LEAVE_TIMEOUT = 0.6
#: Bound on closing the backends after every service has left (where a backend's
#: close can be bounded at all; the entry point's hard deadline covers the rest).
CLOSE_TIMEOUT = 0.25
#: Settings a reload cannot change: the store (and the metrics server) is built from
#: them at start. The timings a reload cannot change are the backends' to say
#: (:data:`sg.backends.RESTART_ONLY_TIMINGS`). A new ``driver`` is a driver roll: see
#: :meth:`Agent._switch_driver`.
RESTART_ONLY = ("store", "metrics_listen")
#: Least time between two STATUS-only notifications.
#: How late, in its own report intervals, a service's last good round may be while
#: the watchdog is still pinged (one interval, its jitter and a slow beat).
CADENCE_SLACK = 2.0
STATUS_EVERY = 1.0


class ServiceRunner:
    """One configured service: its heartbeat in a task that can be cancelled alone."""

    def __init__(self, spec: ServiceSpec, heartbeat: Heartbeat) -> None:
        self.spec = spec
        self.heartbeat = heartbeat
        self.scope = anyio.CancelScope()
        self.done = anyio.Event()

    async def run(self) -> None:
        """Run the heartbeat until :meth:`stop` (it leaves on the way out)."""
        try:
            with self.scope:
                await self.heartbeat.run()
        finally:
            self.done.set()

    async def stop(self) -> None:
        """Cancel the heartbeat and wait for its (bounded) leave."""
        self.scope.cancel()
        await self.done.wait()

    def update(self, spec: ServiceSpec, timings: Timings) -> None:
        """Apply a new check or report interval in place (same member)."""
        self.spec = spec
        self.heartbeat.gate = _gate(spec, timings)
        self.heartbeat.set_report_interval(spec.report_interval)


def _gate(spec: ServiceSpec, timings: Timings) -> Gate | None:
    """The service's check, damped by its check_fail_after / check_pass_after."""
    check = build_check(spec.check, spec.effective_check_timeout(timings))
    return damped(check, spec.check_fail_after, spec.check_pass_after)


def _metrics(settings: AgentSettings) -> AgentMetrics | None:
    """The agent's metrics when ``metrics_listen`` is set (issue #5); needs prometheus-client."""
    if settings.metrics_listen is None:
        return None
    try:
        from agent.metrics import AgentMetrics
    except ImportError as exc:
        raise ConfigError("metrics_listen needs prometheus-client: pip install 'servicegroup[api]'") from exc
    return AgentMetrics()


def _compose(*observers: BeatObserver | None) -> BeatObserver | None:
    """One observer calling each given one in turn (``None``s skipped)."""
    present = [o for o in observers if o is not None]
    if len(present) <= 1:
        return present[0] if present else None

    async def both(hb: Heartbeat, ok: bool) -> None:
        for observer in present:
            result = observer(hb, ok)
            if result is not None:
                await result

    return both


class Agent:
    """Runs the heartbeats of ``settings.services`` until a stop signal."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        notifier: Notifier | None = None,
        observer: BeatObserver | None = None,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        settings.require_services()
        self.settings = settings
        self.notifier = notifier or Notifier(None)
        #: Passed to every heartbeat (the metrics hook).
        self.observer = observer
        self.on_stop = on_stop
        # Built now, so a bad URL or a missing extra is a configuration error at start-up.
        self.group = ServiceGroup.from_settings(settings.library)
        if len(settings.services) > 1:
            # One store round trip per interval for all of this host's services (issue 12).
            self.group.backends.batch_beats()
        self.runners: dict[ServiceKey, ServiceRunner] = {}
        self.stopping = anyio.Event()
        self.metrics = _metrics(settings)  # metrics (issue #5)
        if self.metrics is not None:  # metrics (issue #5)
            self.observer = _compose(self.metrics.observe, observer)
        self._tg: TaskGroup | None = None
        self._main: anyio.CancelScope | None = None
        self._reload_lock = anyio.Lock()
        self._reload_pending = False
        self._ready = False
        self._fatal: ConfigError | None = None

    @property
    def heartbeats(self) -> list[Heartbeat]:
        """The running heartbeats, one per configured service."""
        return [runner.heartbeat for runner in self.runners.values()]

    async def run(self) -> None:
        """Beat until a stop signal; then leave every service and return.

        Raises :class:`~sg.errors.ConfigError` when a backend refuses the configuration
        at start (e.g. a database schema newer than this release).
        """
        self._main = anyio.CancelScope()
        if self.stopping.is_set():
            self._main.cancel()
        async with anyio.create_task_group() as outer:
            # Signals are handled outside the main scope, so a second SIGTERM during
            # the shutdown is still caught (and ignored) instead of killing us.
            outer.start_soon(self._handle_signals)
            try:
                await self._serve()
            finally:
                outer.cancel_scope.cancel()
        if self._fatal is not None:
            # Raised here, not in the task group, so the caller gets it unwrapped.
            raise self._fatal

    async def _serve(self) -> None:
        group = self.group
        log.info(
            "agent_starting",
            store=group.store.name,
            driver=group.driver.name,
            services=len(self.settings.services),
            report_interval=self.settings.timings.report_interval,
            service_down_time=self.settings.timings.service_down_time,
        )
        self.notifier.status(f"starting: {len(self.settings.services)} services")
        try:
            assert self._main is not None
            with self._main:
                try:
                    await group.__aenter__()
                except ConfigError as exc:
                    self._fatal = exc
                    return
                async with anyio.create_task_group() as tg:
                    self._tg = tg
                    if self.metrics is not None and self.settings.metrics_listen:  # metrics (issue #5)
                        await tg.start(self.metrics.serve, self.settings.metrics_listen)
                    for spec in self.settings.services:
                        self._start(spec)
                    tg.start_soon(self._supervise)
                    if self._reload_pending:
                        self._reload_pending = False
                        tg.start_soon(self.reload)
        finally:
            self._tg = None
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIMEOUT):
                await group.aclose()
            self.notifier.close()
            log.info("agent_stopped")

    def _start(self, spec: ServiceSpec) -> None:
        assert self._tg is not None
        heartbeat = self.group.heartbeat(
            spec.member,
            interval=spec.report_interval,
            observer=self.observer,
            gate=_gate(spec, self.settings.timings),
            leave_timeout=LEAVE_TIMEOUT,
        )
        runner = ServiceRunner(spec, heartbeat)
        self.runners[heartbeat.key] = runner
        if self.metrics is not None:  # metrics (issue #5): export before the first beat
            self.metrics.track(heartbeat)
        self._tg.start_soon(runner.run)

    # -- signals ----------------------------------------------------------------------

    async def _handle_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                name = signal.Signals(signum).name
                if signum == signal.SIGHUP:
                    if self.stopping.is_set():
                        log.info("reload_ignored", why="stopping")
                    elif self._tg is None:
                        self._reload_pending = True
                    else:
                        self._tg.start_soon(self.reload)
                elif self.stopping.is_set():
                    log.info("stop_already_requested", signal=name)
                else:
                    self.stop(name)

    def stop(self, why: str = "requested") -> None:
        """Begin a clean stop: ``STOPPING=1``, then every service leaves."""
        if self.stopping.is_set():
            return
        log.info("agent_stopping", signal=why)
        self.stopping.set()
        self.notifier.stopping()
        if self.on_stop is not None:
            self.on_stop()
        if self._main is not None:
            self._main.cancel()

    # -- systemd notifications --------------------------------------------------------------

    def _tick(self) -> float:
        intervals = [runner.heartbeat.report_interval for runner in self.runners.values()]
        return min(0.5, max(0.05, min(intervals, default=1.0) / 5))

    def status_line(self) -> str:
        """One line for ``systemctl status``: services by state, and the age of the
        oldest last good beat among the services that should beat (not held down)."""
        now = time.monotonic()
        runners = list(self.runners.values())
        held = [r for r in runners if r.heartbeat.check_failure is not None]
        gated_in = [r for r in runners if r.heartbeat.check_failure is None]
        beating = sum(1 for r in gated_in if r.heartbeat.last_round_ok)
        failing = len(gated_in) - beating
        last = [r.heartbeat.stats.last_success for r in gated_in]
        if not gated_in:
            age = "none (every service is held down)"
        elif any(t is None for t in last):
            age = "never (some service has not beaten yet)"
        else:
            age = f"{max(now - t for t in last if t is not None):.1f}s ago"
        return (
            f"{len(runners)} services: {beating} beating, {len(held)} held down by a failed check, "
            f"{failing} failing; oldest last good beat {age}"
        )

    @staticmethod
    def _on_cadence(runner: ServiceRunner, now: float, last_ping: float) -> bool:
        """Whether a service keeps its own cadence: a good round since the last ping, or
        one within :data:`CADENCE_SLACK` of its own report interval. A service beating
        every 3 s must not hold up the pings of a 2 s watchdog (systemd killed the agent
        for it), and one that stopped beating still stops them."""
        good = runner.heartbeat.last_good
        if good is None:
            return False
        return bool(good > last_ping or now - good <= CADENCE_SLACK * runner.heartbeat.report_interval)

    async def _supervise(self) -> None:
        last_ping = time.monotonic()
        last_status = 0.0
        watchdog = self.notifier.watchdog_interval
        interval = self.settings.timings.report_interval
        if watchdog is not None and watchdog < 2 * interval:
            log.warning("watchdog_too_short", watchdog_s=watchdog, report_interval=interval)
        # Without systemd every notification is dropped: the status line is not built
        # for nobody, five times a second (issue 12, the agent's CPU per beat).
        notify = self.notifier.enabled
        while True:
            await anyio.sleep(self._tick())
            runners = list(self.runners.values())
            goods = [r.heartbeat.last_good for r in runners]
            now = time.monotonic()
            if not self._ready:
                if runners and all(good is not None for good in goods):
                    self._ready = True
                    last_ping = last_status = now
                    self.notifier.ready(self.status_line())
                    log.info("agent_ready", services=len(runners))
                    if not notify:
                        # Nobody to ping or tell: nothing left for this loop to do, and
                        # its five wake-ups a second were a tenth of the agent's CPU.
                        await anyio.sleep_forever()
            elif all(self._on_cadence(r, now, last_ping) for r in runners):
                last_ping = last_status = now
                if notify:
                    self.notifier.watchdog(self.status_line())
            if now - last_status >= STATUS_EVERY:
                last_status = now
                if notify:
                    self.notifier.status(self.status_line())

    # -- reload ---------------------------------------------------------------------------

    async def reload(self) -> None:
        """Re-read the configuration file and apply it; refuse one with an error."""
        async with self._reload_lock:
            self.notifier.reloading()
            try:
                await self._reload()
            finally:
                if not self.stopping.is_set():
                    self.notifier.ready(self.status_line())

    async def _switch_driver(self, driver: Driver) -> bool:
        """Move every service to ``driver`` (a driver roll, host by host): open it, hold
        each member in it, record it on each record, then remove the members from the
        old driver and close it. No service reads down on the way. Returns whether it
        moved; if the new driver cannot be opened, the old one stays."""
        backends = self.group.backends
        try:
            await backends.driver_call("open", driver.open())
        except BackendUnavailable as exc:
            log.error("driver_switch_refused", driver=driver.name, error=str(exc))
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIMEOUT):
                await driver.close()
            return False
        old = backends.swap_driver(driver)

        async def move(heartbeat: Heartbeat) -> None:
            try:
                await heartbeat.switch_driver()
            except BackendUnavailable as exc:
                # Its next beat joins the new driver; the old member stays until then.
                log.warning("driver_switch_join_failed", binary=heartbeat.member.binary, error=str(exc))
                return
            if old.name == driver.name:
                # The same kind (a memcached pool change): a member may have the same key
                # in both, and leaving the old would delete the new. The old one's expire
                # (memcached's TTL) or go with its session (ZooKeeper) at the close below.
                return
            try:
                await backends.driver_call("leave", old.leave(heartbeat.member))
            except BackendUnavailable as exc:
                log.warning("driver_switch_leave_failed", binary=heartbeat.member.binary, error=str(exc))

        async with anyio.create_task_group() as tg:
            for heartbeat in self.heartbeats:
                tg.start_soon(move, heartbeat)
        with anyio.CancelScope(shield=True), anyio.move_on_after(backends.timings.driver_timeout):
            await old.close()
        log.info("driver_switched", old=old.name, new=driver.name, services=len(self.runners))
        return True

    async def _reload(self) -> None:
        source = self.settings.source
        try:
            new = load_agent_settings(source)
            new.require_services()
        except ConfigError as exc:
            log.error("reload_refused", error=str(exc), config=str(source))
            return
        old = self.settings
        fixed = [key for key in RESTART_ONLY if _setting(new, key) != _setting(old, key)]
        try:
            if fixed:
                raise ConfigError(f"changing {', '.join(fixed)} needs a restart")
            self.group.backends.update_timings(new.timings)
            driver = None
            if new.library.driver != old.library.driver:
                driver = load_driver(new.library.driver, new.timings)
        except ConfigError as exc:
            log.error("reload_refused", error=f"{exc} of the agent", config=str(source))
            return
        if driver is not None and not await self._switch_driver(driver):
            # The old driver stays; so do the old settings' driver URL, for the next reload.
            new = replace(new, library=replace(new.library, driver=old.library.driver))
        wanted = {ServiceKey(spec.host, spec.binary): spec for spec in new.services}
        removed = [key for key in self.runners if key not in wanted]
        replaced: list[ServiceKey] = []
        updated: list[ServiceKey] = []
        for key, spec in wanted.items():
            runner = self.runners.get(key)
            if runner is None:
                continue
            if spec.member != runner.spec.member:
                replaced.append(key)
            elif spec != runner.spec or spec.interval(old.timings) != spec.interval(new.timings):
                updated.append(key)
        # Old members leave before their replacements join: a late leave of the old
        # runner must not mark the new record left.
        async with anyio.create_task_group() as tg:
            for key in removed + replaced:
                tg.start_soon(self.runners[key].stop)
        for key in removed + replaced:
            del self.runners[key]
            if self.metrics is not None:  # metrics (issue #5): no series for a removed service
                self.metrics.forget(key)
        for key in updated:
            self.runners[key].update(wanted[key], new.timings)
        added = [key for key in wanted if key not in self.runners]
        for key in added:
            self._start(wanted[key])
        self.settings = new
        log.info(
            "reloaded",
            config=str(source),
            added=[key.binary for key in added if key not in replaced],
            removed=[key.binary for key in removed],
            replaced=[key.binary for key in replaced],
            updated=[key.binary for key in updated],
            services=len(self.runners),
        )


def _setting(settings: AgentSettings, key: str) -> object:
    """A restart-only setting, from the agent's own or the library's part."""
    return getattr(settings, key) if key == "metrics_listen" else getattr(settings.library, key)
