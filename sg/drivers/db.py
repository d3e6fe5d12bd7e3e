"""The ``db`` driver: no second signal; liveness is the record alone (Nova's default).

A clean stop is still seen at once: the group records ``left`` in the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from sg.drivers.base import DriverOptions, Membership
from sg.errors import ConfigError
from sg.model import Service

__all__ = ["DBDriver"]


class DBDriver:
    """Holds nothing: every service counts as a member."""

    name = "db"

    def __init__(self, options: DriverOptions | None = None) -> None:
        self.options = options or DriverOptions()

    @classmethod
    def from_url(cls, url: str, options: DriverOptions) -> DBDriver:
        """``db://`` (takes no host or options)."""
        parts = urlsplit(url)
        if parts.netloc or parts.path not in ("", "/") or parts.query:
            raise ConfigError(f"driver URL {url!r}: the db driver takes no host or options; use 'db://'")
        return cls(options)

    async def open(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Nothing to release."""

    async def join(self, service: Service) -> None:
        """Nothing to hold."""

    async def refresh(self, service: Service) -> bool:
        """Never re-joins."""
        return False

    async def leave(self, service: Service) -> None:
        """Nothing to remove: the group marks the record ``left``."""

    async def members(self, services: Sequence[Service]) -> Membership:
        """Every service is a member."""
        return {s.key: True for s in services}
