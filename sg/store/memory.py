"""In-process store for downstream unit tests: ``memory://NAME``.

Stores with the same NAME in one process share their records, so an embedded
heartbeat and a reader built separately see the same services. Nothing is kept
on disk. The local clock stands in for the store clock.
"""

from __future__ import annotations

import builtins
import time
import uuid as uuidlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Self
from urllib.parse import urlsplit

from sg.errors import ConfigError, NotFound
from sg.model import (
    NEW_SERVICE_REASON,
    Action,
    Actor,
    Member,
    Service,
    ServiceAction,
    ServiceKey,
    StoreContext,
)
from sg.store.base import MAX_CHECK_FAILURE, BeatResult, Survey, SurveyQuery
from sg.timings import Timings

__all__ = ["MemoryStore", "reset_memory_stores"]


class _Records:
    def __init__(self) -> None:
        self.rows: dict[ServiceKey, Service] = {}
        self.beats: dict[ServiceKey, float] = {}
        self.gaps: dict[ServiceKey, float | None] = {}
        self.actions: list[ServiceAction] = []
        self.next_id = 1


_SHARED: dict[str, _Records] = {}


def reset_memory_stores() -> None:
    """Forget every ``memory://`` store of this process (for test isolation)."""
    _SHARED.clear()


class MemoryStore:
    """Records in a dict shared by name within the process."""

    name = "memory"

    def __init__(self, shared_name: str = "default") -> None:
        self.shared_name = shared_name
        self._records = _SHARED.setdefault(shared_name, _Records())

    @classmethod
    def from_url(cls, url: str, timings: Timings) -> Self:
        """``memory://`` or ``memory://NAME``; the timings do not apply (nothing waits)."""
        parts = urlsplit(url)
        if parts.path not in ("", "/") or parts.query:
            raise ConfigError(f"store URL {url!r}: memory takes only a name, as 'memory://NAME'")
        return cls(parts.netloc or "default")

    def _with_age(self, service: Service) -> Service:
        stamp = self._records.beats.get(service.key)
        return replace(service, age=None if stamp is None else time.time() - stamp)

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close; records stay for other stores of the same name."""

    async def ping(self) -> None:
        """Always reachable."""

    async def register(self, member: Member, *, driver: str | None = None) -> Service:
        """Upsert."""
        key, topic, version = member.key, member.topic, member.version
        old = self._records.rows.get(key)
        if old is None:
            new = Service(
                host=member.host,
                binary=member.binary,
                topic=topic,
                version=version,
                id=self._records.next_id,
                uuid=str(uuidlib.uuid4()),
                created_at=datetime.now(UTC),
                zone=member.zone,
                disabled=not member.enable_new,
                disabled_reason=None if member.enable_new else NEW_SERVICE_REASON,
                driver=driver,
            )
            self._records.next_id += 1
        else:
            new = replace(old, topic=topic, version=version, zone=member.zone, driver=driver or old.driver)
        self._records.rows[key] = new
        return self._with_age(new)

    async def beat_many(self, keys: Sequence[ServiceKey]) -> list[BeatResult | None]:
        """:meth:`beat` for each key (:class:`~sg.store.base.BatchBeats`)."""
        return [await self.beat(key) for key in keys]

    async def beat(self, key: ServiceKey) -> BeatResult | None:
        """Stamp with the local clock."""
        old = self._records.rows.get(key)
        if old is None:
            return None
        now = time.time()
        previous = self._records.beats.get(key)
        self._records.gaps[key] = None if previous is None else now - previous
        self._records.beats[key] = now
        new = replace(
            old,
            report_count=old.report_count + 1,
            left=False,
            check_failure=None,
            updated_at=datetime.fromtimestamp(now, UTC),
        )
        self._records.rows[key] = new
        return BeatResult(new.id, new.report_count, now)

    async def survey(self, query: SurveyQuery) -> Survey:
        """The matching records and the store's context, as the SQL store computes them."""
        now = time.time()
        rows = [
            self._with_age(r)
            for r in self._records.rows.values()
            if all(
                want is None or have == want
                for want, have in (
                    (query.topic, r.topic),
                    (query.binary, r.binary),
                    (query.host, r.host),
                    (query.key, r.key),
                    (query.uuid, r.uuid),
                )
            )
        ]
        stamps = self._records.beats
        resumed = [
            now - stamp + gap
            for key, stamp in stamps.items()
            if (gap := self._records.gaps.get(key)) is not None
            and gap > query.down_time
            and now - stamp < query.window
        ]
        context = StoreContext(
            total=len(self._records.rows),
            newest_age=now - max(stamps.values()) if stamps else None,
            resumed=(max(resumed), min(resumed)) if resumed else None,
        )
        sizes = None
        if query.partial:
            counts = Counter(r.topic for r in self._records.rows.values())
            sizes = {r.topic: counts[r.topic] for r in rows}
        return Survey(sorted(rows, key=lambda r: (r.host, r.binary)), context, sizes)

    async def get(self, key: ServiceKey) -> Service | None:
        """One record."""
        row = self._records.rows.get(key)
        return None if row is None else self._with_age(row)

    async def get_by_uuid(self, uuid: str) -> Service | None:
        """By uuid."""
        for row in self._records.rows.values():
            if row.uuid == uuid:
                return self._with_age(row)
        return None

    async def list(
        self, *, topic: str | None = None, binary: str | None = None, host: str | None = None
    ) -> list[Service]:
        """Filtered, ordered by host then binary."""
        rows = [
            self._with_age(r)
            for r in self._records.rows.values()
            if (topic is None or r.topic == topic)
            and (binary is None or r.binary == binary)
            and (host is None or r.host == host)
        ]
        return sorted(rows, key=lambda r: (r.host, r.binary))

    def _change(self, key: ServiceKey, **changes: object) -> Service:
        old = self._records.rows.get(key)
        if old is None:
            raise NotFound(f"no service host={key.host!r} binary={key.binary!r}")
        new = replace(old, **changes)  # type: ignore[arg-type]
        self._records.rows[key] = new
        return self._with_age(new)

    def _record(self, service: Service, action: Action, actor: Actor | None, why: str | None) -> None:
        if actor is None:
            return
        self._records.actions.append(
            ServiceAction(
                id=len(self._records.actions) + 1,
                uuid=service.uuid,
                host=service.host,
                binary=service.binary,
                action=action,
                actor=actor.name,
                via=actor.via,
                why=actor.why if actor.why is not None else why,
                at=datetime.now(UTC),
            )
        )

    async def set_disabled(
        self, key: ServiceKey, disabled: bool, reason: str | None, *, actor: Actor | None = None
    ) -> Service:
        """Enable or disable."""
        new = self._change(key, disabled=disabled, disabled_reason=reason if disabled else None)
        self._record(new, "disable" if disabled else "enable", actor, reason if disabled else None)
        return new

    async def set_forced_down(
        self, key: ServiceKey, forced_down: bool, *, actor: Actor | None = None
    ) -> Service:
        """Set or clear forced_down."""
        new = self._change(key, forced_down=forced_down)
        self._record(new, "force_down" if forced_down else "force_up", actor, None)
        return new

    async def update_admin(
        self,
        key: ServiceKey,
        *,
        disabled: bool | None = None,
        reason: str | None = None,
        forced_down: bool | None = None,
        actor: Actor | None = None,
    ) -> Service:
        """Change ``disabled`` (with its reason) and ``forced_down`` at once; ``None``
        leaves that flag as it is. With ``actor``, audited."""
        changes: dict[str, object] = {}
        if disabled is not None:
            changes.update(disabled=disabled, disabled_reason=reason if disabled else None)
        if forced_down is not None:
            changes["forced_down"] = forced_down
        new = self._change(key, **changes)
        if disabled is not None:
            self._record(new, "disable" if disabled else "enable", actor, new.disabled_reason)
        if forced_down is not None:
            self._record(new, "force_down" if forced_down else "force_up", actor, None)
        return new

    async def set_check_failure(self, key: ServiceKey, reason: str | None) -> bool:
        """Record or clear the failed check's reason."""
        if key not in self._records.rows:
            return False
        self._change(key, check_failure=None if reason is None else reason[:MAX_CHECK_FAILURE])
        return True

    async def mark_left(self, key: ServiceKey) -> bool:
        """Record a clean stop."""
        if key not in self._records.rows:
            return False
        self._change(key, left=True)
        return True

    async def delete(self, key: ServiceKey, *, actor: Actor | None = None, action: Action = "delete") -> bool:
        """Remove."""
        self._records.beats.pop(key, None)
        old = self._records.rows.pop(key, None)
        if old is not None:
            self._record(old, action, actor, None)
        return old is not None

    async def actions(
        self, *, uuid: str | None = None, key: ServiceKey | None = None
    ) -> builtins.list[ServiceAction]:
        """The audit trail of one service, oldest first."""
        return [
            a
            for a in self._records.actions
            if (uuid is None or a.uuid == uuid) and (key is None or (a.host, a.binary) == key)
        ]

    async def min_version(self, binary: str) -> int | None:
        """Minimum version over every record of ``binary``."""
        return min((r.version for r in await self.list(binary=binary)), default=None)
