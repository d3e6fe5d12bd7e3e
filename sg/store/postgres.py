"""PostgreSQL store (asyncpg pool): service records for a fleet.

``updated_at`` is ``clock_timestamp()``, the server's wall clock at the moment of
the write (``now()`` would be the start of the transaction). Ages are computed in
SQL against ``clock_timestamp()`` too, so no client clock is ever involved.

The pool is created lazily and re-created after a failure, so an agent started
while the database is down keeps trying instead of exiting.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import asyncpg

from sg.config import redact_url
from sg.errors import BackendTimeout, BackendUnavailable, ConfigError, NotFound
from sg.model import Service, ServiceKey
from sg.store.base import BeatResult
from sg.store.sql import COLUMNS, MAX_CHECK_FAILURE, SCHEMA_VERSION, row_to_service

__all__ = ["PostgresStore"]

AGE = "EXTRACT(EPOCH FROM clock_timestamp() - updated_at)::float8 AS age"
SELECT = f"SELECT {COLUMNS}, {AGE} FROM services"
RETURNING = f"RETURNING {COLUMNS}, {AGE}"
#: Serialises schema creation between agents that start at the same moment.
MIGRATION_LOCK = 0x5347_0001

MIGRATIONS: dict[int, Sequence[str]] = {
    1: (
        """CREATE TABLE services (
            id bigserial PRIMARY KEY,
            uuid uuid NOT NULL UNIQUE,
            host text NOT NULL,
            "binary" text NOT NULL,
            topic text NOT NULL,
            version integer NOT NULL DEFAULT 0,
            disabled boolean NOT NULL DEFAULT false,
            disabled_reason text,
            forced_down boolean NOT NULL DEFAULT false,
            has_left boolean NOT NULL DEFAULT false,
            report_count bigint NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            updated_at timestamptz,
            UNIQUE (host, "binary")
        )""",
        "CREATE INDEX services_topic ON services (topic)",
        'CREATE INDEX services_binary ON services ("binary")',
    ),
    # Why the agent's local health check failed; NULL while it passes.
    2: ("ALTER TABLE services ADD COLUMN check_failure text",),
}

#: Our own URL options; everything else in the query goes to asyncpg/libpq.
OWN_OPTIONS = {"pool_min", "pool_max", "timeout"}


class PostgresStore:
    """Service records in PostgreSQL. Build with :meth:`from_url`."""

    name = "postgresql"

    def __init__(self, dsn: str, *, timeout: float = 5.0, pool_min: int = 0, pool_max: int = 10) -> None:
        self.dsn = dsn
        self.timeout = timeout
        self.pool_min = pool_min
        self.pool_max = pool_max
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = anyio.Lock()
        self._schema_ready = False

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 5.0) -> PostgresStore:
        """``postgresql://user@host:5432/db?sslmode=...&pool_max=10&timeout=5``."""
        parts = urlsplit(url)
        if not parts.path.strip("/"):
            raise ConfigError(f"store URL {redact_url(url)!r} names no database ('.../DBNAME')")
        own: dict[str, float] = {}
        passthrough = []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in OWN_OPTIONS:
                try:
                    own[key] = float(value)
                except ValueError as exc:
                    raise ConfigError(f"store URL {redact_url(url)!r}: {key} must be a number") from exc
            else:
                passthrough.append((key, value))
        dsn = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(passthrough)))
        # pool_min defaults to 0: asyncpg's task that keeps a connection floor logs a
        # traceback on every retry while the server is down.
        pool_min, pool_max = int(own.get("pool_min", 0)), int(own.get("pool_max", 10))
        if not 0 <= pool_min <= pool_max or pool_max < 1:
            raise ConfigError(f"store URL {redact_url(url)!r}: need 0 <= pool_min <= pool_max, pool_max >= 1")
        return cls(dsn, timeout=own.get("timeout", timeout), pool_min=pool_min, pool_max=pool_max)

    def __repr__(self) -> str:
        return f"PostgresStore({redact_url(self.dsn)!r})"

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is not None and self._schema_ready:
            return self._pool
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=self.pool_min,
                    max_size=self.pool_max,
                    timeout=self.timeout,
                    command_timeout=self.timeout,
                )
            if not self._schema_ready:
                async with self._pool.acquire() as conn:
                    await self._migrate(conn)
                self._schema_ready = True
        return self._pool

    async def _migrate(self, conn: asyncpg.Connection) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute("CREATE TABLE IF NOT EXISTS sg_schema (version integer NOT NULL)")
            current = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM sg_schema")
            if current > SCHEMA_VERSION:
                raise ConfigError(
                    f"database schema version {current} is newer than this release supports "
                    f"({SCHEMA_VERSION}); upgrade servicegroup"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version]:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO sg_schema (version) VALUES ($1)", version)

    @asynccontextmanager
    async def _conn(self, what: str) -> AsyncIterator[asyncpg.Connection]:
        """One pooled connection for one operation, under the deadline, errors mapped."""
        try:
            with anyio.fail_after(self.timeout):
                pool = await self._get_pool()
                async with pool.acquire() as conn:
                    yield conn
        except TimeoutError as exc:
            raise BackendTimeout("postgresql", f"{what} took longer than {self.timeout:g}s") from exc
        except asyncpg.UndefinedTableError as exc:
            # The database was dropped and re-created under us: migrate again next call.
            self._schema_ready = False
            raise BackendUnavailable("postgresql", f"{what} failed: schema missing ({exc})") from exc
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise BackendUnavailable("postgresql", f"{what} failed: {type(exc).__name__}: {exc}") from exc

    async def _fetchrow(self, what: str, sql: str, *args: Any) -> Any:
        async with self._conn(what) as conn:
            return await conn.fetchrow(sql, *args)

    async def open(self) -> None:
        """Create the pool and migrate the schema."""
        async with self._conn("open"):
            pass

    async def close(self) -> None:
        """Close the pool, terminating connections that do not close in time."""
        pool, self._pool = self._pool, None
        self._schema_ready = False
        if pool is None:
            return
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(self.timeout):
                await pool.close()
                return
            pool.terminate()

    async def ping(self) -> None:
        """``SELECT 1``."""
        await self._fetchrow("ping", "SELECT 1")

    async def register(self, host: str, binary: str, topic: str, version: int) -> Service:
        """Upsert the record for ``(host, binary)``."""
        sql = (
            'INSERT INTO services (uuid, host, "binary", topic, version) VALUES ($1, $2, $3, $4, $5) '
            'ON CONFLICT (host, "binary") DO UPDATE SET topic = EXCLUDED.topic, '
            f"version = EXCLUDED.version {RETURNING}"
        )
        return row_to_service(
            await self._fetchrow("register", sql, uuidlib.uuid4(), host, binary, topic, version)
        )

    async def beat(self, key: ServiceKey) -> BeatResult | None:
        """Stamp ``updated_at = clock_timestamp()`` in one UPDATE."""
        sql = (
            "UPDATE services SET updated_at = clock_timestamp(), report_count = report_count + 1, "
            'has_left = false, check_failure = NULL WHERE host = $1 AND "binary" = $2 '
            "RETURNING id, report_count, EXTRACT(EPOCH FROM updated_at)::float8"
        )
        row = await self._fetchrow("beat", sql, key.host, key.binary)
        return None if row is None else BeatResult(int(row[0]), int(row[1]), float(row[2]))

    async def get(self, key: ServiceKey) -> Service | None:
        """One record with its age."""
        row = await self._fetchrow("get", f'{SELECT} WHERE host = $1 AND "binary" = $2', key.host, key.binary)
        return None if row is None else row_to_service(row)

    async def get_by_uuid(self, uuid: str) -> Service | None:
        """The record with this uuid (``None`` for a malformed uuid too)."""
        try:
            value = uuidlib.UUID(uuid)
        except (ValueError, TypeError, AttributeError):
            return None
        row = await self._fetchrow("get", f"{SELECT} WHERE uuid = $1", value)
        return None if row is None else row_to_service(row)

    async def list(
        self, *, topic: str | None = None, binary: str | None = None, host: str | None = None
    ) -> list[Service]:
        """Matching records, one query."""
        clauses: list[str] = []
        params: list[str] = []
        for column, value in (("topic", topic), ('"binary"', binary), ("host", host)):
            if value is not None:
                params.append(value)
                clauses.append(f"{column} = ${len(params)}")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        async with self._conn("list") as conn:
            rows = await conn.fetch(f'{SELECT}{where} ORDER BY host, "binary"', *params)
        return [row_to_service(row) for row in rows]

    async def _update(self, what: str, key: ServiceKey, assignments: str, *params: Any) -> Service:
        n = len(params)
        sql = f'UPDATE services SET {assignments} WHERE host = ${n + 1} AND "binary" = ${n + 2} {RETURNING}'
        row = await self._fetchrow(what, sql, *params, key.host, key.binary)
        if row is None:
            raise NotFound(f"no service host={key.host!r} binary={key.binary!r}")
        return row_to_service(row)

    async def set_disabled(self, key: ServiceKey, disabled: bool, reason: str | None) -> Service:
        """Enable or disable; never touches ``updated_at``."""
        return await self._update(
            "set_disabled", key, "disabled = $1, disabled_reason = $2", disabled, reason if disabled else None
        )

    async def set_forced_down(self, key: ServiceKey, forced_down: bool) -> Service:
        """Set or clear ``forced_down``; never touches ``updated_at``."""
        return await self._update("set_forced_down", key, "forced_down = $1", forced_down)

    async def set_check_failure(self, key: ServiceKey, reason: str | None) -> bool:
        """Record or clear the failed check's reason; never touches ``updated_at``."""
        value = None if reason is None else reason[:MAX_CHECK_FAILURE]
        row = await self._fetchrow(
            "set_check_failure",
            'UPDATE services SET check_failure = $1 WHERE host = $2 AND "binary" = $3 RETURNING id',
            value,
            key.host,
            key.binary,
        )
        return row is not None

    async def mark_left(self, key: ServiceKey) -> bool:
        """Record a clean stop."""
        row = await self._fetchrow(
            "mark_left",
            'UPDATE services SET has_left = true WHERE host = $1 AND "binary" = $2 RETURNING id',
            key.host,
            key.binary,
        )
        return row is not None

    async def delete(self, key: ServiceKey) -> bool:
        """Remove the record."""
        row = await self._fetchrow(
            "delete",
            'DELETE FROM services WHERE host = $1 AND "binary" = $2 RETURNING id',
            key.host,
            key.binary,
        )
        return row is not None

    async def min_version(
        self, binary: str, *, only_up: bool = False, service_down_time: float = 60.0
    ) -> int | None:
        """``MIN(version)`` in SQL."""
        sql = 'SELECT MIN(version) FROM services WHERE "binary" = $1'
        args: list[Any] = [binary]
        if only_up:
            sql += (
                " AND NOT forced_down AND NOT has_left AND check_failure IS NULL AND updated_at IS NOT NULL"
                " AND abs(EXTRACT(EPOCH FROM clock_timestamp() - updated_at)) <= $2"
            )
            args.append(service_down_time)
        row = await self._fetchrow("min_version", sql, *args)
        return None if row is None or row[0] is None else int(row[0])
