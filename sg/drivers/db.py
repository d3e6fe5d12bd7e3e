"""The ``db`` driver: no second signal; liveness is the record alone (Nova's default).

A clean stop is still seen at once: the group records ``left`` in the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self
from urllib.parse import urlsplit

from sg.drivers.base import Membership
from sg.errors import ConfigError
from sg.model import Member, Service, ServiceKey, collection_deferred
from sg.redact import redact_url
from sg.timings import Timings

__all__ = ["DBDriver"]


class DBDriver:
    """Holds nothing: every service counts as a member."""

    name = "db"
    #: ``members`` makes no round trip (see :mod:`sg.drivers.base`).
    local = True

    def __init__(self, timings: Timings | None = None) -> None:
        self.timings = timings or Timings()

    @classmethod
    def from_url(cls, url: str, timings: Timings) -> Self:
        """``db://`` (takes no host or options)."""
        parts = urlsplit(url)
        if parts.netloc or parts.path not in ("", "/") or parts.query:
            raise ConfigError(
                f"driver URL {redact_url(url)!r}: the db driver takes no host or options; use 'db://'"
            )
        return cls(timings)

    async def open(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Nothing to release."""

    async def ping(self) -> None:
        """No server of its own: the store is the backend."""

    async def join(self, member: Member) -> None:
        """Nothing to hold."""

    async def refresh(self, member: Member) -> bool:
        """Never re-joins."""
        return False

    async def leave(self, member: Member) -> None:
        """Nothing to remove: the group marks the record ``left``."""

    async def members(self, services: Sequence[Service | Member]) -> Membership:
        """Every service is a member."""
        # Once per listing over every row: the key built as ServiceKey.__new__ would,
        # without its Python-level __new__ (twice the cost per row).
        new, cls = tuple.__new__, ServiceKey
        with collection_deferred():
            return {new(cls, (s.host, s.binary)): True for s in services}
