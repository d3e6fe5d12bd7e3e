"""The Driver protocol: the second liveness signal, and the ChangeNotifier beside it.

A driver holds a *member* for each joined service (an ephemeral znode, a TTL
key, or nothing at all for ``db``). The group asks it, in one batch, which
services it still holds. Every method raises
:class:`~sg.errors.BackendUnavailable` on a backend fault; a driver that can
answer for some services but not others reports ``None`` for those in
:meth:`Driver.members`.

A driver whose :meth:`Driver.members` makes no round trip (``db``, ``memory``) may
say so with a class attribute ``local = True`` (optional, not part of the protocol:
a driver without it is asked as one that does). A verdict then asks it after the
store read instead of beside it in a task of its own, which was 40 % of a ``db``
verdict's instructions (callgrind) for nothing to overlap
(:attr:`~sg.backends.Backends.local_membership`).

Deadlines are not the driver's business: :class:`~sg.backends.Backends` runs
every call under ``driver_timeout``. A driver that answers in parts (one
request per server) reads the caller's deadline with
``anyio.current_effective_deadline()`` to give each part its share. Work a driver
starts on its own (a keeper task) bounds itself with ``timings.driver_timeout``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, Self, runtime_checkable

from sg.model import RECOVERING, Member, Presence, Service, ServiceKey
from sg.timings import Timings

__all__ = ["RECOVERING", "ChangeNotifier", "Driver", "Membership"]

#: Per service: ``True`` held, ``False`` not held, ``None`` cannot tell (its server
#: is unreachable), or :data:`~sg.model.RECOVERING`: not held because the driver lost
#: it in a mass event it knows of (the verdict is then ``unknown``, not ``down``).
Membership = Mapping[ServiceKey, Presence]


@runtime_checkable
class Driver(Protocol):
    """A liveness backend."""

    #: A short name for logs and errors ("db", "zookeeper", "memcached").
    name: str

    @classmethod
    def from_url(cls, url: str, timings: Timings) -> Self:
        """Build (not yet open) from a URL of this driver's scheme; :class:`~sg.errors.ConfigError`
        naming the option when the URL is wrong."""
        ...

    async def open(self) -> None:
        """Connect. A driver that cannot connect yet may raise; callers retry."""

    async def close(self) -> None:
        """Disconnect, releasing members this process holds. Idempotent."""

    async def ping(self) -> None:
        """Round-trip to every server the driver uses; raise
        :class:`~sg.errors.BackendUnavailable` naming any that does not answer."""

    async def join(self, member: Member) -> None:
        """Start holding a member for ``member``."""

    async def refresh(self, member: Member) -> bool:
        """Keep the member alive, re-creating it if the backend lost it.

        Returns ``True`` when it had to re-create it (a re-join), else ``False``.
        """
        ...

    async def leave(self, member: Member) -> None:
        """Remove the member now, whoever created it. Absent members are not an error."""

    async def members(self, services: Sequence[Service | Member]) -> Membership:
        """Say for each service whether the driver holds it, in O(1) round trips."""
        ...


@runtime_checkable
class ChangeNotifier(Protocol):
    """A driver that can push membership changes instead of being polled."""

    async def wait_for_change(self, topic: str | None, timeout: float) -> bool:
        """Return ``True`` as soon as a member of ``topic`` (any topic if ``None``)
        joins or leaves, ``False`` after ``timeout`` seconds without a change."""
        ...
