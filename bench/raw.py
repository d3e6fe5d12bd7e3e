"""The raw work a listing or a verdict needs, through the same client libraries the
library uses (aiosqlite, asyncpg, aiomcache, aiozk) and nothing of servicegroup.

- records: one SELECT of the same rows, ordered as the library orders them, with
  the age computed in SQL;
- memcached: one multi-get of the member keys per server (one server here);
- ZooKeeper: one ``get_children`` per topic (one topic here);
- db driver: nothing beyond the SELECT.

A listing's raw work runs the SELECT and the driver call concurrently, as the
library does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any, Protocol

import aiomcache
import aiosqlite
import aiozk
import asyncpg

from bench.seed import BINARY, COLUMNS, SQLITE_NOW, host, mc_key, zk_member_path, zk_topic_path

PG_AGE = "EXTRACT(EPOCH FROM clock_timestamp() - updated_at)::float8 AS age"


class RawStore(Protocol):
    """A raw SQL connection that can read every row or one row."""

    async def rows(self) -> Sequence[Any]: ...
    async def row(self, i: int) -> Any: ...
    async def close(self) -> None: ...


class RawDriver(Protocol):
    """A raw driver client: membership of the first ``n`` services, or of one."""

    async def members(self, n: int) -> object: ...
    async def one(self, i: int) -> object: ...
    async def close(self) -> None: ...


class RawSqlite:
    """aiosqlite on the same file, tuples (no row factory)."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    @classmethod
    async def open(cls, path: str) -> RawSqlite:
        """Connect to ``path``."""
        return cls(await aiosqlite.connect(path, isolation_level=None))

    async def rows(self) -> Sequence[Any]:
        """Every row with its age, ordered as a listing is."""
        sql = f'SELECT {COLUMNS}, {SQLITE_NOW} - updated_at AS age FROM services ORDER BY host, "binary"'
        async with self.db.execute(sql) as cur:
            return await cur.fetchall()

    async def row(self, i: int) -> Any:
        """One row with its age."""
        sql = (
            f"SELECT {COLUMNS}, {SQLITE_NOW} - updated_at AS age FROM services "
            'WHERE host = ? AND "binary" = ?'
        )
        async with self.db.execute(sql, (host(i), BINARY)) as cur:
            return await cur.fetchone()

    async def close(self) -> None:
        """Close the connection."""
        await self.db.close()


class RawPostgres:
    """One asyncpg connection (no pool)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    @classmethod
    async def open(cls, dsn: str) -> RawPostgres:
        """Connect to ``dsn``."""
        return cls(await asyncpg.connect(dsn))

    async def rows(self) -> Sequence[Any]:
        """Every row with its age, ordered as a listing is."""
        return await self.conn.fetch(f'SELECT {COLUMNS}, {PG_AGE} FROM services ORDER BY host, "binary"')

    async def row(self, i: int) -> Any:
        """One row with its age."""
        return await self.conn.fetchrow(
            f'SELECT {COLUMNS}, {PG_AGE} FROM services WHERE host = $1 AND "binary" = $2', host(i), BINARY
        )

    async def close(self) -> None:
        """Close the connection."""
        await self.conn.close()


class RawMemcached:
    """One aiomcache client; member keys computed before any timing."""

    def __init__(self, port: int) -> None:
        self.client = aiomcache.Client("127.0.0.1", port, pool_size=2)
        self.keys: list[bytes] = []

    def grow(self, n: int) -> None:
        """Know the keys of the first ``n`` services."""
        self.keys.extend(mc_key(i) for i in range(len(self.keys), n))

    async def members(self, n: int) -> object:
        """One multi-get of the first ``n`` keys."""
        return await self.client.multi_get(*self.keys[:n])

    async def one(self, i: int) -> object:
        """One get."""
        return await self.client.get(mc_key(i))

    async def close(self) -> None:
        """Close the client."""
        await self.client.close()


class RawZooKeeper:
    """One aiozk client (the library's ZooKeeper client library)."""

    def __init__(self, client: aiozk.ZKClient) -> None:
        self.client = client

    @classmethod
    async def open(cls, hosts: str) -> RawZooKeeper:
        """Connect to ``hosts``."""
        # aiozk must read a whole reply within read_timeout (3 s by default): a 100,000-child
        # get_children (2.6 MB) decoded in pure Python on a loaded machine took longer.
        client = aiozk.ZKClient(hosts, session_timeout=10, read_timeout=30)
        await client.start()
        return cls(client)

    async def members(self, n: int) -> object:
        """One ``get_children`` of the topic."""
        return await self.client.get_children(zk_topic_path())

    async def one(self, i: int) -> object:
        """Does the member's node exist (one ``exists``)."""
        return await self.client.exists(zk_member_path(i))

    async def close(self) -> None:
        """Close the session; a server that is already gone is not the benchmark's failure."""
        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(self.client.close(), 5)


class NoDriver:
    """The db driver: no second round trip."""

    async def members(self, n: int) -> object:
        """Nothing to ask."""
        return None

    async def one(self, i: int) -> object:
        """Nothing to ask."""
        return None

    async def close(self) -> None:
        """Nothing to close."""


async def listing(store: RawStore, driver: RawDriver | None, n: int) -> None:
    """A listing's raw work: the SELECT and the driver call, concurrently."""
    if driver is None or isinstance(driver, NoDriver):
        await store.rows()
        return
    await asyncio.gather(store.rows(), driver.members(n))
