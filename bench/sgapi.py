"""Every place the benchmarks touch the library, one small function each.

The library is being restructured; when a public signature changes, the fix is
here, in one line, and every figure follows. Only the public API is used:
``ServiceGroup.from_urls``, ``list``, ``get``, ``verdict``, ``heartbeat``, the
group's ``driver`` attribute (for membership alone), and ``Backends`` /
``Heartbeat`` as an agent builds them (for a fleet of hosts sharing one store). Seeding never goes through
the library (see :mod:`bench.seed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sg import Backends, Heartbeat, Member, ServiceGroup

#: Timings for the listing benchmarks: every seeded record stays fresh for the run.
STEADY = {
    "report_interval": 60.0,
    "service_down_time": 3600.0,
    "store_timeout": 120.0,
    "driver_timeout": 120.0,
}


def open_group(store: str, driver: str = "db://", **timings: float) -> ServiceGroup:
    """A group on ``store`` + ``driver`` (use as ``async with``)."""
    return ServiceGroup.from_urls(store, driver, **{**STEADY, **timings})


async def list_all(group: ServiceGroup) -> list[Any]:
    """``group.list()``: every service with its verdict."""
    return await group.list()


def count_up(statuses: Sequence[Any]) -> int:
    """How many listed services read up."""
    return sum(1 for s in statuses if s.is_up)


async def find(group: ServiceGroup, host: str, binary: str) -> Any:
    """The service record of ``(host, binary)`` (what ``verdict`` takes)."""
    return (await group.get(host, binary)).service


async def verdict(group: ServiceGroup, service: Any) -> Any:
    """``group.verdict(service)``: one record re-read and one driver check."""
    return await group.verdict(service)


def state(verdict: Any) -> str:
    """``up``, ``down`` or ``unknown``."""
    return str(verdict.state)


def reason(verdict: Any) -> str:
    """Why (``ok``, ``stale``, ``not_joined``, ...)."""
    return str(verdict.reason)


async def membership(group: ServiceGroup, services: Sequence[Any]) -> Any:
    """The driver's membership answer for ``services`` alone (no records, no verdicts)."""
    return await group.driver.members(services)


def services_of(statuses: Sequence[Any]) -> list[Any]:
    """The service records of a listing."""
    return [s.service for s in statuses]


def heartbeat(group: ServiceGroup, host: str, binary: str, topic: str) -> Any:
    """A heartbeat for one service (``beat`` runs one beat of it)."""
    return group.heartbeat(Member(host, binary, topic))


def host_backends(group: ServiceGroup) -> Any:
    """What one more host's ``sg-agent`` holds: its own backends, batching its services'
    beats (``batch_beats``), on the group's store and driver (so on its connections)."""
    backends = Backends(group.store, group.driver, group.backends.timings)
    backends.batch_beats()
    return backends


def heartbeat_on(backends: Any, host: str, binary: str, topic: str) -> Any:
    """A heartbeat for one service of the host that holds ``backends``."""
    return Heartbeat(backends, Member(host, binary, topic))


async def beat(hb: Any) -> bool:
    """One heartbeat: store and driver; True when both took it."""
    return bool(await hb.beat_once())
