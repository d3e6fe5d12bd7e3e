"""PostgreSQL (asyncpg pool): the fleet's store; the PostgreSQL hooks of :class:`~sg.store.sql.SQLStore`.

URL: ``postgresql://user[:password]@host[:port]/dbname[?option=value&...]``
(``postgres://`` too).

============  =======================  ============================================
option        default                  meaning
============  =======================  ============================================
``pool_min``  0                        connections kept open (an integer >= 0)
``pool_max``  10                       most connections (an integer >= pool_min, >= 1)
``timeout``   ``store_timeout`` (5 s)  asyncpg's connect and command timeouts; also
                                       bounds close()
``sslmode``   (libpq's)                one of disable, allow, prefer, require,
                                       verify-ca, verify-full
anything      (none)                   passed to asyncpg/libpq as given
else                                   (``options=...``, ...)
============  =======================  ============================================

Every port must be a number from 1 to 65535. A malformed URL, port or option is a
:class:`~sg.errors.ConfigError` naming it, when the URL is parsed, not a traceback
at the first connection.

``updated_at`` is ``clock_timestamp()``, the server's wall clock at the moment of
the write (``now()`` would be the start of the transaction). Ages are computed in
SQL against ``clock_timestamp()`` too, so no client clock is ever involved.

The pool is created on first use and kept; asyncpg reconnects its connections, so
an agent started while the database is down keeps trying instead of exiting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import asyncpg

from sg.errors import ConfigError
from sg.redact import password_misparsed, redact_url
from sg.store.sql import Connection, Dialect, SQLStore, url_seconds
from sg.timings import Timings

__all__ = ["DIALECT", "PostgresConnector", "PostgresStore", "PostgresURL", "parse_url"]

DIALECT = Dialect(
    serial_key="bigserial PRIMARY KEY",
    uuid="uuid",
    boolean="boolean",
    true="true",
    false="false",
    timestamp="timestamptz",
    clock="clock_timestamp()",
    epoch_of="EXTRACT(EPOCH FROM {})::float8",
    numbered=True,
)

#: The ``sslmode`` values asyncpg accepts (libpq's list).
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

#: Serialises schema creation between agents that start at the same moment.
MIGRATION_LOCK = 0x5347_0001


@dataclass(frozen=True, slots=True)
class PostgresURL:
    """A parsed ``postgresql:`` store URL: the DSN for asyncpg and our own options."""

    dsn: str
    timeout: float
    pool_min: int
    pool_max: int

    def __repr__(self) -> str:
        return (
            f"PostgresURL({redact_url(self.dsn)!r}, timeout={self.timeout:g}, "
            f"pool_min={self.pool_min}, pool_max={self.pool_max})"
        )


def _check_ports(shown: str, hosts: str, misparsed: bool) -> None:
    """Each ``host[:port]`` of a (comma-separated) host list has a port of 1-65535, if any.
    When the "port" may be part of a password (``misparsed``), it is not echoed."""
    for hostport in hosts.split(","):
        port = hostport.rpartition("]")[2] if hostport.startswith("[") else hostport
        if ":" not in port:
            continue
        value = port.rpartition(":")[2]
        if not (value.isascii() and value.isdigit() and 1 <= int(value) <= 65535):
            if misparsed:
                raise ConfigError(
                    f"store URL {shown!r}: bad port; a password holding '#', '?' or '/' "
                    "must be percent-encoded (%23, %3F, %2F)"
                )
            raise ConfigError(f"store URL {shown!r}: port must be a number from 1 to 65535, got {value!r}")


def parse_url(url: str, default_timeout: float) -> PostgresURL:
    """Split our options (``pool_min``, ``pool_max``, ``timeout``) from those passed to
    asyncpg; :class:`ConfigError` naming the option when one is wrong."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"store URL {shown!r} is malformed: {exc}") from exc
    _check_ports(shown, parts.netloc.rpartition("@")[2], password_misparsed(url))
    if not parts.path.strip("/"):
        raise ConfigError(f"store URL {shown!r} names no database ('.../DBNAME')")
    timeout = default_timeout
    # pool_min defaults to 0: asyncpg's task that keeps a connection floor logs a
    # traceback on every retry while the server is down.
    pools = {"pool_min": 0, "pool_max": 10}
    passthrough = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "timeout":
            timeout = url_seconds(shown, key, value)
        elif key in pools:
            try:
                pools[key] = int(value)
            except ValueError as exc:
                raise ConfigError(f"store URL {shown!r}: {key} must be an integer, got {value!r}") from exc
        elif key == "sslmode" and value not in SSLMODES:
            raise ConfigError(
                f"store URL {shown!r}: sslmode must be one of {', '.join(SSLMODES)}, got {value!r}"
            )
        else:
            passthrough.append((key, value))
    pool_min, pool_max = pools["pool_min"], pools["pool_max"]
    if not 0 <= pool_min <= pool_max or pool_max < 1:
        raise ConfigError(f"store URL {shown!r}: need 0 <= pool_min <= pool_max and pool_max >= 1")
    dsn = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(passthrough)))
    return PostgresURL(dsn, timeout=timeout, pool_min=pool_min, pool_max=pool_max)


class _Connection:
    """The :class:`~sg.store.sql.Connection` over one pooled asyncpg connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, args: Sequence[object] = ()) -> None:
        await self.conn.execute(sql, *args)

    async def fetchone(self, sql: str, args: Sequence[object] = ()) -> Any | None:
        return await self.conn.fetchrow(sql, *args)

    async def fetchall(self, sql: str, args: Sequence[object] = ()) -> Sequence[Any]:
        rows: Sequence[Any] = await self.conn.fetch(sql, *args)
        return rows

    async def fetchtuples(self, sql: str, args: Sequence[object] = ()) -> Sequence[Sequence[Any]]:
        # asyncpg's Record is read by position in C already.
        return await self.fetchall(sql, args)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing to send.

    asyncpg 0.32 sends ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``
    on every release by default: a second round trip for each store call (a verdict,
    a beat). The store leaves no session state behind (no SET, LISTEN, cursor or
    session-level lock; the migration lock is transaction-scoped), and asyncpg still
    rolls back a transaction left open before calling this.
    """


class PostgresConnector:
    """Pool, lock and close for one PostgreSQL database (see the module's notes)."""

    name = "postgresql"
    dialect = DIALECT
    faults: tuple[type[BaseException], ...] = (
        OSError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        # asyncpg 0.32 raises it from a pooled connection the server closed mid-operation
        # ("cannot switch to state 12", MagicStack/asyncpg#1069), seen after failovers.
        asyncpg.InternalClientError,
    )

    def __init__(self, url: PostgresURL) -> None:
        self.url = url
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = anyio.Lock()

    def where(self) -> str:
        """The DSN without its password."""
        return redact_url(self.url.dsn)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Connection]:
        """One pooled connection for one operation."""
        pool = await self._get_pool()
        async with pool.acquire() as conn:
            try:
                yield _Connection(conn)
            except asyncpg.InternalClientError:
                # Its protocol state is broken: never hand this connection out again.
                conn.terminate()
                raise

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    url = self.url
                    self._pool = await asyncpg.create_pool(
                        url.dsn,
                        min_size=url.pool_min,
                        max_size=url.pool_max,
                        timeout=url.timeout,
                        command_timeout=url.timeout,
                        reset=_keep_session,
                    )
        return self._pool

    @asynccontextmanager
    async def migration_lock(self, conn: Connection) -> AsyncIterator[None]:
        """A transaction holding an advisory lock, released at its end."""
        assert isinstance(conn, _Connection)
        async with conn.conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", (MIGRATION_LOCK,))
            yield

    @asynccontextmanager
    async def transaction(self, conn: Connection) -> AsyncIterator[None]:
        """asyncpg's transaction: committed at the end, rolled back on an exception."""
        assert isinstance(conn, _Connection)
        async with conn.conn.transaction():
            yield

    def schema_missing(self, exc: BaseException) -> bool:
        """The database was dropped and re-created, or our tables dropped, under us."""
        return isinstance(exc, asyncpg.UndefinedTableError)

    async def close(self) -> None:
        """Close the pool; cancelled (its time is up), terminate its connections."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await pool.close()
        except BaseException:
            pool.terminate()
            raise


class PostgresStore(SQLStore):
    """Service records in PostgreSQL. Build with :meth:`from_url`."""

    connector: PostgresConnector

    @classmethod
    def from_url(cls, url: str, timings: Timings) -> Self:
        """A store for ``postgresql://user@host:5432/db?sslmode=...&pool_max=10&timeout=5``
        (``timeout`` defaults to ``timings.store_timeout``), not yet open."""
        parsed = parse_url(url, timings.store_timeout)
        return cls(PostgresConnector(parsed), timeout=parsed.timeout)
