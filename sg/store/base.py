"""The Store protocol: where service records live.

A store owns the ``services`` table. ``updated_at`` is written only by
:meth:`Store.beat`, stamped with the store's own clock; admin changes never
touch it. Ages are computed by the store (in SQL), so the reader's clock never
matters.

Deadlines are not the store's business: :class:`~sg.backends.Backends` runs
every call under ``store_timeout``. A store maps its own exceptions to
:class:`~sg.errors.BackendUnavailable` at its boundary
(:func:`~sg.errors.translate_errors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Self, runtime_checkable

from sg.model import Member, Service, ServiceKey
from sg.timings import Timings

__all__ = ["MAX_CHECK_FAILURE", "BeatResult", "Store"]

#: Longest check failure reason kept; longer ones are cut (a command's stderr can be long).
MAX_CHECK_FAILURE = 500


@dataclass(frozen=True, slots=True)
class BeatResult:
    """The outcome of a heartbeat write.

    ``store_time`` is the store's clock (seconds since the epoch) when it stamped
    ``updated_at``; the heartbeat compares it with the local clock to measure skew.
    """

    service_id: int
    report_count: int
    store_time: float


@runtime_checkable
class Store(Protocol):
    """Persistent service records. Every method raises
    :class:`~sg.errors.BackendUnavailable` on a backend fault.
    """

    #: A short name for logs and errors ("sqlite", "postgresql", "memory").
    name: str

    @classmethod
    def from_url(cls, url: str, timings: Timings) -> Self:
        """Build (not yet open) from a URL of this store's scheme; :class:`~sg.errors.ConfigError`
        naming the option when the URL is wrong."""
        ...

    async def open(self) -> None:
        """Connect and create or migrate the schema. Safe to call again after a failure."""

    async def close(self) -> None:
        """Release connections. Idempotent."""

    async def ping(self) -> None:
        """Round-trip to the backend; raise if it cannot be reached."""

    async def register(self, member: Member) -> Service:
        """Create the record for ``member.key`` or update its topic and version."""
        ...

    async def beat(self, key: ServiceKey) -> BeatResult | None:
        """Stamp ``updated_at`` with the store clock, add one to ``report_count`` and clear
        ``left`` and ``check_failure``, in one statement. Return ``None`` when the record does not exist."""

    async def get(self, key: ServiceKey) -> Service | None:
        """Return the record with its age, or ``None``."""

    async def get_by_uuid(self, uuid: str) -> Service | None:
        """Return the record whose ``uuid`` is given, or ``None``."""

    async def list(
        self, *, topic: str | None = None, binary: str | None = None, host: str | None = None
    ) -> list[Service]:
        """Return matching records with ages, in one query, ordered by host then binary."""
        ...

    async def set_disabled(self, key: ServiceKey, disabled: bool, reason: str | None) -> Service:
        """Enable or disable a service; raise :class:`~sg.errors.NotFound` if absent."""
        ...

    async def set_forced_down(self, key: ServiceKey, forced_down: bool) -> Service:
        """Set or clear ``forced_down``; raise :class:`~sg.errors.NotFound` if absent."""
        ...

    async def update_admin(
        self,
        key: ServiceKey,
        *,
        disabled: bool | None = None,
        reason: str | None = None,
        forced_down: bool | None = None,
    ) -> Service:
        """Change ``disabled`` (``reason`` kept only while disabled) and ``forced_down``
        atomically, in one write; ``None`` leaves that flag as it is. Raise
        :class:`~sg.errors.NotFound` if absent; never touches ``updated_at``."""
        ...

    async def set_check_failure(self, key: ServiceKey, reason: str | None) -> bool:
        """Record why the service's local health check failed (``None`` clears it), cut to
        :data:`MAX_CHECK_FAILURE` characters; never touches ``updated_at``.
        Return whether the record exists."""
        ...

    async def mark_left(self, key: ServiceKey) -> bool:
        """Record a clean stop; return whether the record exists."""
        ...

    async def delete(self, key: ServiceKey) -> bool:
        """Remove the record; return whether it existed."""
        ...

    async def min_version(self, binary: str) -> int | None:
        """``MIN(version)`` over every record of ``binary``; ``None`` if there are none.
        (Over live records only is the group's business: liveness needs the driver.)"""
