"""``ServiceGroup.watch``: a stream of up/down transitions.

Each round lists the services (O(1) round trips) and yields the ones whose state
changed. Between rounds it waits for the driver to report a change, when the
driver can (a :class:`~sg.drivers.base.ChangeNotifier`, such as ZooKeeper's child
watches), or for the poll interval, whichever comes first: staleness is a matter
of time, so a round is due at least once per interval even with push notifications.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import anyio

from sg.drivers.base import ChangeNotifier
from sg.errors import BackendUnavailable
from sg.lazylog import get_logger
from sg.model import ServiceEvent, ServiceKey, ServiceStatus

__all__ = ["Lister", "watch"]

log = get_logger("sg.watch")

#: Lists the services of a topic (all topics for ``None``) with their verdicts.
Lister = Callable[..., Awaitable[list[ServiceStatus]]]


async def watch(
    list_services: Lister,
    notifier: ChangeNotifier | None,
    *,
    topic: str | None = None,
    interval: float,
) -> AsyncIterator[ServiceEvent]:
    """Yield an event for every service at start, then one per state change.

    ``list_services(topic=...)`` is called once per round; ``notifier``, when given,
    ends the wait between rounds early.
    """
    known: dict[ServiceKey, ServiceStatus] = {}
    while True:
        try:
            statuses = await list_services(topic=topic)
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
