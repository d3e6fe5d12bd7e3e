"""In-process driver for downstream unit tests: ``memory://NAME``.

Drivers with the same NAME in one process share members. Tests can call
:func:`expire_member` to simulate a lost session or an evicted key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self
from urllib.parse import urlsplit

from sg.drivers.base import Membership
from sg.errors import ConfigError
from sg.model import Member, Service, ServiceKey
from sg.timings import Timings

__all__ = ["MemoryDriver", "expire_member", "reset_memory_drivers"]

_SHARED: dict[str, set[ServiceKey]] = {}


def reset_memory_drivers() -> None:
    """Forget every ``memory://`` driver's members in this process."""
    _SHARED.clear()


def expire_member(name: str, key: ServiceKey) -> None:
    """Drop a member as if its session expired; the next refresh re-joins it."""
    _SHARED.get(name, set()).discard(key)


class MemoryDriver:
    """Members in a set shared by name within the process."""

    name = "memory"
    #: ``members`` makes no round trip (see :mod:`sg.drivers.base`).
    local = True

    def __init__(self, shared_name: str = "default", timings: Timings | None = None) -> None:
        self.shared_name = shared_name
        self.timings = timings or Timings()
        self._members = _SHARED.setdefault(shared_name, set())

    @classmethod
    def from_url(cls, url: str, timings: Timings) -> Self:
        """``memory://`` or ``memory://NAME``."""
        parts = urlsplit(url)
        if parts.path not in ("", "/") or parts.query:
            raise ConfigError(f"driver URL {url!r}: memory takes only a name, as 'memory://NAME'")
        return cls(parts.netloc or "default", timings)

    async def open(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Members stay, as the backend would keep another process's members."""

    async def ping(self) -> None:
        """In process: always answers."""

    async def join(self, member: Member) -> None:
        """Hold the member."""
        self._members.add(member.key)

    async def refresh(self, member: Member) -> bool:
        """Re-add the member if it was lost."""
        if member.key in self._members:
            return False
        self._members.add(member.key)
        return True

    async def leave(self, member: Member) -> None:
        """Drop the member."""
        self._members.discard(member.key)

    async def members(self, services: Sequence[Service | Member]) -> Membership:
        """Membership of each."""
        return {s.key: s.key in self._members for s in services}
