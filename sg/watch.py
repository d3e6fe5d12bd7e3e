"""``ServiceGroup.watch``: a stream of up/down transitions.

Each round lists the services (O(1) round trips) and yields the ones whose state
changed. Between rounds it waits for the driver to report a change, when the
driver can (a :class:`ChangeNotifier`, such as ZooKeeper's child watches), or
for the poll interval, whichever comes first: staleness is a matter of time, so
a round is due at least once per interval even with push notifications.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import anyio
import structlog

from sg.drivers.base import ChangeNotifier
from sg.errors import BackendUnavailable
from sg.model import ServiceEvent, ServiceKey, ServiceStatus

if TYPE_CHECKING:
    from sg.group import ServiceGroup

__all__ = ["ChangeNotifier", "watch"]

log = structlog.get_logger("sg.watch")


async def watch(
    group: ServiceGroup, *, topic: str | None = None, interval: float | None = None
) -> AsyncIterator[ServiceEvent]:
    """Yield an event for every service at start, then one per state change."""
    interval = interval or min(group.report_interval, 1.0)
    notifier = group.driver if isinstance(group.driver, ChangeNotifier) else None
    known: dict[ServiceKey, ServiceStatus] = {}
    while True:
        try:
            statuses = await group.list(topic=topic)
        except BackendUnavailable as exc:
            log.warning("watch_list_failed", error=str(exc))
        else:
            seen = set()
            for status in statuses:
                key = status.service.key
                seen.add(key)
                old = known.get(key)
                if old is None or old.verdict.state != status.verdict.state:
                    yield ServiceEvent(status, None if old is None else old.verdict.state)
                known[key] = status
            for key in [k for k in known if k not in seen]:
                gone = known.pop(key)
                yield ServiceEvent(gone, gone.verdict.state, removed=True)
        if notifier is not None:
            try:
                await notifier.wait_for_change(topic, interval)
            except BackendUnavailable as exc:
                log.warning("watch_notify_failed", error=str(exc))
                await anyio.sleep(interval)
        else:
            await anyio.sleep(interval)
