"""SQLite (aiosqlite): the embedded default store; the SQLite hooks of :class:`~sg.store.sql.SQLStore`.

URL: ``sqlite:///abs/path.db`` (absolute) or ``sqlite:rel/path.db`` (relative to the
working directory).

==========  =======================  ==============================================
option      default                  meaning
==========  =======================  ==============================================
``timeout`` ``store_timeout`` (5 s)  how long a writer waits for another process's
                                     lock (``busy_timeout``); also bounds close()
``create``  ``true``                 ``false``: the file must exist; a reader (the
                                     read-only ``sgctl`` commands) never creates it
                                     or its directory, and a missing file is a
                                     :class:`~sg.errors.ConfigError` naming it
==========  =======================  ==============================================

One connection per store object: aiosqlite gives it one thread, so statements are
serialised and there is one writer per connection. WAL lets other processes
(sgctl, another agent) read while the agent writes.

Timestamps are REAL epoch seconds from SQLite's own clock (``julianday('now')``:
millisecond resolution, unlike ``CURRENT_TIMESTAMP``, and ``unixepoch('subsec')``
is missing in SQLite 3.40).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

import aiosqlite
import anyio

from sg.errors import ConfigError
from sg.redact import redact_url
from sg.store.sql import Connection, Dialect, SQLStore, url_seconds
from sg.timings import Timings

__all__ = ["DIALECT", "SQLiteConnector", "SQLiteStore", "parse_create", "parse_url"]

DIALECT = Dialect(
    serial_key="INTEGER PRIMARY KEY AUTOINCREMENT",
    uuid="TEXT",
    boolean="INTEGER",
    true="1",
    false="0",
    timestamp="REAL",
    clock="((julianday('now') - 2440587.5) * 86400.0)",
    epoch_of="{}",
    numbered=False,
)


_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def parse_url(url: str, default_timeout: float) -> tuple[str, float]:
    """The database path and ``timeout`` of a ``sqlite:`` URL; :class:`ConfigError` naming
    the problem otherwise (``create`` is read by :func:`parse_create`)."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"store URL {shown!r} is malformed: {exc}") from exc
    if parts.netloc:
        raise ConfigError(
            f"store URL {shown!r}: sqlite takes no host; use "
            "'sqlite:///absolute/path.db' or 'sqlite:relative/path.db'"
        )
    if not parts.path or parts.path.endswith("/"):
        raise ConfigError(f"store URL {shown!r} names no database file")
    timeout = default_timeout
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "create":
            continue
        if key != "timeout":
            raise ConfigError(f"store URL {shown!r}: unknown sqlite option {key!r} (known: timeout, create)")
        timeout = url_seconds(shown, key, value)
    return parts.path, timeout


def parse_create(url: str) -> bool:
    """The ``create`` option of a ``sqlite:`` URL (default true); :class:`ConfigError` if
    it is not a boolean."""
    create = True
    for key, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if key == "create":
            if value.lower() not in _BOOLEANS:
                shown = redact_url(url)
                raise ConfigError(f"store URL {shown!r}: create must be true or false, got {value!r}")
            create = _BOOLEANS[value.lower()]
    return create


class _Connection:
    """The :class:`~sg.store.sql.Connection` over one aiosqlite connection.

    Each call is one hop to aiosqlite's thread (``execute_fetchall``: execute and fetch
    there), not three (execute, fetch, close the cursor, each a hop and an event loop
    wake-up): the hops were half the CPU of reading one row. Every statement of the
    store returns at most a few rows, or all of a listing's, so fetching them all in
    the thread is what the callers did anyway.
    """

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    async def _fetch(self, sql: str, args: Sequence[object]) -> list[Any]:
        fetched = await self.db.execute_fetchall(sql, args)
        rows = list(fetched)
        # aiosqlite's thread keeps its last result bound until its next statement: emptied
        # here, a listing's 100,000 rows are not kept alive after the listing (23 MiB).
        if isinstance(fetched, list):
            fetched.clear()
        return rows

    async def execute(self, sql: str, args: Sequence[object] = ()) -> None:
        await self._fetch(sql, args)

    async def fetchone(self, sql: str, args: Sequence[object] = ()) -> Any | None:
        rows = await self._fetch(sql, args)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, args: Sequence[object] = ()) -> Sequence[Any]:
        return await self._fetch(sql, args)

    async def fetchtuples(self, sql: str, args: Sequence[object] = ()) -> Sequence[Sequence[Any]]:
        # Plain tuples: no sqlite3.Row per row (a listing reads 10,000 of them). The
        # cursor takes the connection's row factory when it is made, in the thread; the
        # connector's lock keeps every other statement off this connection until the
        # factory is back (a cancelled call's orphaned statement returns to no one).
        db = self.db
        db.row_factory = None
        try:
            return await self._fetch(sql, args)
        finally:
            db.row_factory = sqlite3.Row


class SQLiteConnector:
    """Connect, lock and close for one SQLite file (see the module's notes)."""

    name = "sqlite"
    dialect = DIALECT
    # OperationalError (locked, no such table, I/O) is a DatabaseError; a ProgrammingError
    # is a bug of ours and must not read as an outage.
    faults: tuple[type[BaseException], ...] = (sqlite3.DatabaseError, OSError)

    def __init__(self, path: str, *, timeout: float, create: bool = True) -> None:
        self.path = path
        self.timeout = timeout
        self.create = create
        self._db: aiosqlite.Connection | None = None
        # fast_acquire: an uncontended acquire does not yield to the event loop first
        # (one loop iteration per store call); the statement's own hop is a checkpoint.
        self._lock = anyio.Lock(fast_acquire=True)

    def where(self) -> str:
        """The database file."""
        return self.path

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Connection]:
        """The one connection, for one operation at a time."""
        async with self._lock:
            yield _Connection(await self._connect())

    async def _connect(self) -> aiosqlite.Connection:
        if self._db is not None:
            return self._db
        if self.path == ":memory:":
            db = await aiosqlite.connect(self.path, isolation_level=None)
        elif self.create:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(self.path, isolation_level=None)
        else:
            db = await self._connect_existing()
        try:
            db.row_factory = sqlite3.Row
            await db.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            with anyio.CancelScope(shield=True):
                await db.close()
            raise
        self._db = db
        return db

    async def _connect_existing(self) -> aiosqlite.Connection:
        """Open the file only if it exists (``mode=rw``: SQLite itself refuses to create
        it, so a check-then-open race cannot create it either)."""
        path = await anyio.Path(self.path).absolute()
        missing = ConfigError(
            f"sqlite database {str(path)!r} does not exist (check the store URL; "
            "readers never create it, sg-agent does on its first start)"
        )
        if not await path.is_file():
            raise missing
        try:
            return await aiosqlite.connect(f"{path.as_uri()}?mode=rw", uri=True, isolation_level=None)
        except sqlite3.OperationalError as exc:
            if not await path.exists():
                raise missing from exc
            raise

    def migration_lock(self, conn: Connection) -> AbstractAsyncContextManager[None]:
        """``BEGIN IMMEDIATE``: the write lock first, so two processes opening a new file
        at once cannot both create the schema."""
        return self.transaction(conn)

    @asynccontextmanager
    async def transaction(self, conn: Connection) -> AsyncIterator[None]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (the write lock first: no upgrade deadlock)."""
        assert isinstance(conn, _Connection)
        await conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            await conn.execute("COMMIT")
        except BaseException:
            with anyio.CancelScope(shield=True):
                # A failed COMMIT may have rolled back already.
                if conn.db.in_transaction:
                    await conn.execute("ROLLBACK")
            raise

    def schema_missing(self, exc: BaseException) -> bool:
        """SQLite says ``no such table`` when our tables were dropped under us."""
        return isinstance(exc, sqlite3.OperationalError) and "no such table" in str(exc)

    async def close(self) -> None:
        """Close the connection."""
        db, self._db = self._db, None
        if db is not None:
            await db.close()


class SQLiteStore(SQLStore):
    """Service records in a SQLite file. Build with :meth:`from_url`."""

    connector: SQLiteConnector

    @classmethod
    def from_url(cls, url: str, timings: Timings) -> Self:
        """A store for ``sqlite:///abs/path.db`` or ``sqlite:rel/path.db`` (``?timeout=S``,
        default ``timings.store_timeout``; ``?create=false`` for a reader), not yet open."""
        path, timeout = parse_url(url, timings.store_timeout)
        create = parse_create(url)
        return cls(SQLiteConnector(path, timeout=timeout, create=create), timeout=timeout)

    @property
    def path(self) -> str:
        """The database file."""
        return self.connector.path
