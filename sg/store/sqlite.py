"""SQLite store (aiosqlite): the embedded default.

One connection per store object: aiosqlite gives it one thread, so statements
are serialised and there is one writer per connection. WAL lets other processes
(sgctl, another agent) read while the agent writes; ``busy_timeout`` makes a
writer wait for another process's lock instead of failing at once.

Timestamps are REAL epoch seconds from SQLite's own clock
(``julianday('now')``: millisecond resolution, unlike ``CURRENT_TIMESTAMP``).
"""

from __future__ import annotations

import sqlite3
import uuid as uuidlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiosqlite
import anyio

from sg.config import redact_url
from sg.errors import BackendTimeout, BackendUnavailable, ConfigError, NotFound
from sg.model import Service, ServiceKey
from sg.store.base import BeatResult
from sg.store.sql import COLUMNS, MAX_CHECK_FAILURE, SCHEMA_VERSION, row_to_service

__all__ = ["SQLiteStore"]

NOW = "((julianday('now') - 2440587.5) * 86400.0)"
SELECT = f"SELECT {COLUMNS}, {NOW} - updated_at AS age FROM services"
RETURNING = f"RETURNING {COLUMNS}, {NOW} - updated_at AS age"

MIGRATIONS: dict[int, Sequence[str]] = {
    1: (
        """CREATE TABLE services (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            uuid TEXT NOT NULL UNIQUE,
            host TEXT NOT NULL,
            "binary" TEXT NOT NULL,
            topic TEXT NOT NULL,
            version INTEGER NOT NULL DEFAULT 0,
            disabled INTEGER NOT NULL DEFAULT 0,
            disabled_reason TEXT,
            forced_down INTEGER NOT NULL DEFAULT 0,
            has_left INTEGER NOT NULL DEFAULT 0,
            report_count INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL,
            UNIQUE (host, "binary")
        )""",
        "CREATE INDEX services_topic ON services (topic)",
        'CREATE INDEX services_binary ON services ("binary")',
    ),
    # Why the agent's local health check failed; NULL while it passes.
    2: ("ALTER TABLE services ADD COLUMN check_failure TEXT",),
}


class SQLiteStore:
    """Service records in a SQLite file. Build with :meth:`from_url`."""

    name = "sqlite"

    def __init__(self, path: str, *, timeout: float = 5.0) -> None:
        self.path = path
        self.timeout = timeout
        self._db: aiosqlite.Connection | None = None
        self._lock = anyio.Lock()

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 5.0) -> SQLiteStore:
        """``sqlite:///abs/path.db`` (absolute) or ``sqlite:rel/path.db`` (relative to the
        working directory). Query option: ``timeout`` (seconds)."""
        parts = urlsplit(url)
        if parts.netloc:
            raise ConfigError(
                f"store URL {redact_url(url)!r}: sqlite takes no host; use "
                "'sqlite:///absolute/path.db' or 'sqlite:relative/path.db'"
            )
        if not parts.path or parts.path.endswith("/"):
            raise ConfigError(f"store URL {redact_url(url)!r} names no database file")
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key != "timeout":
                raise ConfigError(f"store URL {url!r}: unknown sqlite option {key!r} (known: timeout)")
            try:
                timeout = float(value)
            except ValueError as exc:
                raise ConfigError(f"store URL {url!r}: timeout must be a number") from exc
        return cls(parts.path, timeout=timeout)

    @asynccontextmanager
    async def _session(self, what: str) -> AsyncIterator[aiosqlite.Connection]:
        """Run one operation under the lock and the deadline, mapping exceptions."""
        try:
            with anyio.fail_after(self.timeout):
                async with self._lock:
                    db = await self._connect()
                    yield db
        except TimeoutError as exc:
            raise BackendTimeout("sqlite", f"{what} took longer than {self.timeout:g}s") from exc
        except (sqlite3.OperationalError, sqlite3.DatabaseError, OSError) as exc:
            raise BackendUnavailable("sqlite", f"{what} failed on {self.path}: {exc}") from exc

    async def _connect(self) -> aiosqlite.Connection:
        if self._db is not None:
            return self._db
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            busy_ms = int(self.timeout * 1000)
            await db.execute(f"PRAGMA busy_timeout = {busy_ms}")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await self._migrate(db)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await db.close()
            raise
        self._db = db
        return db

    async def _migrate(self, db: aiosqlite.Connection) -> None:
        # BEGIN IMMEDIATE takes the write lock first, so two processes opening a new
        # file at once cannot both create the schema.
        await db.execute("BEGIN IMMEDIATE")
        try:
            await db.execute("CREATE TABLE IF NOT EXISTS sg_schema (version INTEGER NOT NULL)")
            async with db.execute("SELECT MAX(version) FROM sg_schema") as cur:
                row = await cur.fetchone()
            current = int(row[0]) if row and row[0] is not None else 0
            if current > SCHEMA_VERSION:
                raise ConfigError(
                    f"database {self.path} has schema version {current}, newer than this "
                    f"release supports ({SCHEMA_VERSION}); upgrade servicegroup"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version]:
                    await db.execute(statement)
                await db.execute("INSERT INTO sg_schema (version) VALUES (?)", (version,))
            await db.execute("COMMIT")
        except BaseException:
            with anyio.CancelScope(shield=True):
                await db.execute("ROLLBACK")
            raise

    async def _one(self, what: str, sql: str, params: Sequence[Any] = ()) -> Any:
        async with self._session(what) as db, db.execute(sql, params) as cur:
            return await cur.fetchone()

    async def open(self) -> None:
        """Open the file (creating its directory) and migrate the schema."""
        async with self._session("open"):
            pass

    async def close(self) -> None:
        """Close the connection."""
        db, self._db = self._db, None
        if db is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(self.timeout):
                await db.close()

    async def ping(self) -> None:
        """Run a trivial query."""
        await self._one("ping", "SELECT 1")

    async def register(self, host: str, binary: str, topic: str, version: int) -> Service:
        """Upsert the record for ``(host, binary)``."""
        sql = (
            'INSERT INTO services (uuid, host, "binary", topic, version, created_at) '
            f"VALUES (?, ?, ?, ?, ?, {NOW}) "
            'ON CONFLICT (host, "binary") DO UPDATE SET topic = excluded.topic, '
            f"version = excluded.version {RETURNING}"
        )
        row = await self._one("register", sql, (str(uuidlib.uuid4()), host, binary, topic, version))
        return row_to_service(row)

    async def beat(self, key: ServiceKey) -> BeatResult | None:
        """Stamp ``updated_at`` with SQLite's clock in one UPDATE."""
        sql = (
            f"UPDATE services SET updated_at = {NOW}, report_count = report_count + 1, "
            'has_left = 0, check_failure = NULL WHERE host = ? AND "binary" = ? '
            "RETURNING id, report_count, updated_at"
        )
        row = await self._one("beat", sql, key)
        if row is None:
            return None
        return BeatResult(int(row[0]), int(row[1]), float(row[2]))

    async def get(self, key: ServiceKey) -> Service | None:
        """Return one record with its age."""
        row = await self._one("get", f'{SELECT} WHERE host = ? AND "binary" = ?', key)
        return None if row is None else row_to_service(row)

    async def get_by_uuid(self, uuid: str) -> Service | None:
        """Return the record with this uuid."""
        row = await self._one("get", f"{SELECT} WHERE uuid = ?", (uuid,))
        return None if row is None else row_to_service(row)

    async def list(
        self, *, topic: str | None = None, binary: str | None = None, host: str | None = None
    ) -> list[Service]:
        """Return matching records in one query."""
        clauses, params = [], []
        for column, value in (("topic", topic), ('"binary"', binary), ("host", host)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        async with (
            self._session("list") as db,
            db.execute(f'{SELECT}{where} ORDER BY host, "binary"', params) as cur,
        ):
            rows = await cur.fetchall()
        return [row_to_service(row) for row in rows]

    async def _update(self, what: str, key: ServiceKey, assignments: str, params: Sequence[Any]) -> Service:
        sql = f'UPDATE services SET {assignments} WHERE host = ? AND "binary" = ? {RETURNING}'
        row = await self._one(what, sql, (*params, *key))
        if row is None:
            raise NotFound(f"no service host={key.host!r} binary={key.binary!r}")
        return row_to_service(row)

    async def set_disabled(self, key: ServiceKey, disabled: bool, reason: str | None) -> Service:
        """Enable or disable; never touches ``updated_at``."""
        return await self._update(
            "set_disabled",
            key,
            "disabled = ?, disabled_reason = ?",
            (int(disabled), reason if disabled else None),
        )

    async def set_forced_down(self, key: ServiceKey, forced_down: bool) -> Service:
        """Set or clear ``forced_down``; never touches ``updated_at``."""
        return await self._update("set_forced_down", key, "forced_down = ?", (int(forced_down),))

    async def set_check_failure(self, key: ServiceKey, reason: str | None) -> bool:
        """Record or clear the failed check's reason; never touches ``updated_at``."""
        value = None if reason is None else reason[:MAX_CHECK_FAILURE]
        row = await self._one(
            "set_check_failure",
            'UPDATE services SET check_failure = ? WHERE host = ? AND "binary" = ? RETURNING id',
            (value, *key),
        )
        return row is not None

    async def mark_left(self, key: ServiceKey) -> bool:
        """Record a clean stop."""
        row = await self._one(
            "mark_left", 'UPDATE services SET has_left = 1 WHERE host = ? AND "binary" = ? RETURNING id', key
        )
        return row is not None

    async def delete(self, key: ServiceKey) -> bool:
        """Remove the record."""
        row = await self._one(
            "delete", 'DELETE FROM services WHERE host = ? AND "binary" = ? RETURNING id', key
        )
        return row is not None

    async def min_version(
        self, binary: str, *, only_up: bool = False, service_down_time: float = 60.0
    ) -> int | None:
        """``MIN(version)`` in SQL."""
        sql = 'SELECT MIN(version) FROM services WHERE "binary" = ?'
        params: list[Any] = [binary]
        if only_up:
            sql += (
                " AND NOT forced_down AND NOT has_left AND check_failure IS NULL"
                f" AND ABS({NOW} - updated_at) <= ?"
            )
            params.append(service_down_time)
        row = await self._one("min_version", sql, params)
        return None if row is None or row[0] is None else int(row[0])
