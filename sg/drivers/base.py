"""The Driver protocol: the second liveness signal.

A driver holds a *member* for each joined service (an ephemeral znode, a TTL
key, or nothing at all for ``db``). The group asks it, in one batch, which
services it still holds. Every method raises
:class:`~sg.errors.BackendUnavailable` (or ``BackendTimeout``) on a backend
fault; a driver that can answer for some services but not others reports
``None`` for those in :meth:`Driver.members`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sg.model import Service, ServiceKey

__all__ = ["Driver", "DriverOptions", "Membership", "open_driver"]

#: Per service: ``True`` held, ``False`` not held, ``None`` cannot tell (its server
#: is unreachable).
Membership = Mapping[ServiceKey, bool | None]


@dataclass(frozen=True, slots=True)
class DriverOptions:
    """What every driver is told by the group, besides its URL."""

    report_interval: float = 10.0
    service_down_time: float = 60.0
    #: Deadline for one backend call.
    timeout: float = 5.0


@runtime_checkable
class Driver(Protocol):
    """A liveness backend."""

    #: A short name for logs and errors ("db", "zookeeper", "memcached").
    name: str

    async def open(self) -> None:
        """Connect. A driver that cannot connect yet may raise; callers retry."""

    async def close(self) -> None:
        """Disconnect, releasing members this process holds. Idempotent."""

    async def join(self, service: Service) -> None:
        """Start holding a member for ``service``."""

    async def refresh(self, service: Service) -> bool:
        """Keep the member alive, re-creating it if the backend lost it.

        Returns ``True`` when it had to re-create it (a re-join), else ``False``.
        """

    async def leave(self, service: Service) -> None:
        """Remove the member now, whoever created it. Absent members are not an error."""

    async def members(self, services: Sequence[Service]) -> Membership:
        """Say for each service whether the driver holds it, in O(1) round trips."""


def open_driver(url: str, options: DriverOptions) -> Driver:
    """Build (not yet open) the driver for ``url``, chosen by its scheme."""
    from sg.backends import load_backend_class

    cls = load_backend_class("sg.drivers", url, "driver")
    driver: Driver = cls.from_url(url, options)
    return driver
