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

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, Self, runtime_checkable

from sg.model import Action, Actor, Member, Service, ServiceAction, ServiceKey, StoreContext
from sg.timings import Timings

__all__ = ["MAX_CHECK_FAILURE", "BatchBeats", "BeatResult", "Store", "Survey", "SurveyQuery"]

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


@dataclass(frozen=True, slots=True)
class SurveyQuery:
    """Which records a :meth:`Store.survey` reads (every filter given must match), and
    the two durations its :class:`~sg.model.StoreContext` is measured with."""

    down_time: float
    #: A beat that landed less than this long ago after a longer silence than
    #: ``down_time`` counts as a resumption.
    window: float
    topic: str | None = None
    binary: str | None = None
    host: str | None = None
    key: ServiceKey | None = None
    uuid: str | None = None

    @property
    def partial(self) -> bool:
        """Whether the read may cut through topics (then their sizes are read too)."""
        return any(v is not None for v in (self.binary, self.host, self.key, self.uuid))


@dataclass(frozen=True, slots=True)
class Survey:
    """Records with what the store says about itself; ``topic_sizes`` (the size of each
    topic read) is set only for a :attr:`~SurveyQuery.partial` read."""

    services: list[Service]
    context: StoreContext
    topic_sizes: dict[str, int] | None = None


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

    async def register(self, member: Member, *, driver: str | None = None) -> Service:
        """Create the record for ``member.key`` or update its topic and version; ``driver``
        names the driver the service beats through (``None`` keeps the one recorded)."""
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

    async def survey(self, query: SurveyQuery) -> Survey:
        """The records ``query`` matches, with the store's :class:`~sg.model.StoreContext`
        (and topic sizes for a partial read), in one round trip."""
        ...

    async def set_disabled(
        self, key: ServiceKey, disabled: bool, reason: str | None, *, actor: Actor | None = None
    ) -> Service:
        """Enable or disable a service; raise :class:`~sg.errors.NotFound` if absent.
        With ``actor``, the change and its audit row (``disable``/``enable``) commit together."""
        ...

    async def set_forced_down(
        self, key: ServiceKey, forced_down: bool, *, actor: Actor | None = None
    ) -> Service:
        """Set or clear ``forced_down``; raise :class:`~sg.errors.NotFound` if absent.
        With ``actor``, the change and its audit row (``force_down``/``force_up``) commit together."""
        ...

    async def update_admin(
        self,
        key: ServiceKey,
        *,
        disabled: bool | None = None,
        reason: str | None = None,
        forced_down: bool | None = None,
        actor: Actor | None = None,
    ) -> Service:
        """Change ``disabled`` (``reason`` kept only while disabled) and ``forced_down``
        atomically, in one write; ``None`` leaves that flag as it is. Raise
        :class:`~sg.errors.NotFound` if absent; never touches ``updated_at``. With
        ``actor``, each change and its audit row commit together."""
        ...

    async def set_check_failure(self, key: ServiceKey, reason: str | None) -> bool:
        """Record why the service's local health check failed (``None`` clears it), cut to
        :data:`MAX_CHECK_FAILURE` characters; never touches ``updated_at``.
        Return whether the record exists."""
        ...

    async def mark_left(self, key: ServiceKey) -> bool:
        """Record a clean stop; return whether the record exists."""
        ...

    async def delete(self, key: ServiceKey, *, actor: Actor | None = None, action: Action = "delete") -> bool:
        """Remove the record; return whether it existed. With ``actor``, the removal and
        its audit row (``action``: ``delete`` or ``prune``) commit together."""
        ...

    async def actions(
        self, *, uuid: str | None = None, key: ServiceKey | None = None
    ) -> builtins.list[ServiceAction]:
        """The audit trail of one service (by ``uuid``, or by ``key`` over every record
        that ever had it), oldest first. Heartbeats never write there."""
        ...

    async def min_version(self, binary: str) -> int | None:
        """``MIN(version)`` over every record of ``binary``; ``None`` if there are none.
        (Over live records only is the group's business: liveness needs the driver.)"""


@runtime_checkable
class BatchBeats(Protocol):
    """A store that can stamp many records in one round trip (the agent's heartbeats of
    one host, batched by :class:`~sg.backends.Backends`). Optional: a store without it
    is beaten one record at a time."""

    async def beat_many(self, keys: Sequence[ServiceKey]) -> list[BeatResult | None]:
        """:meth:`Store.beat` for each of ``keys`` (distinct), in as few statements as the
        store allows; one result per key, in order, ``None`` where the record does not exist."""
        ...
