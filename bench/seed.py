"""Seed records and driver members with raw SQL and raw clients, never the library.

The library is being restructured, so seeding must not depend on its internals.
What it depends on instead is the data layout, written down here once and checked
on every run (each benchmark asserts that every seeded service reads ``up``
through the library, so a layout change fails loudly instead of measuring
nothing):

- the ``services`` table of ``sg/store/sqlite.py`` and ``sg/store/postgres.py``
  (schema version 2); the library creates it (opening a group migrates), the
  benchmark only inserts rows. SQLite stamps are REAL epoch seconds from
  ``julianday('now')``; PostgreSQL's are ``timestamptz`` from ``clock_timestamp()``;
- memcached member keys ``PREFIX:m:TOPIC:HOST:BINARY`` (``sg/drivers/memcached_keys.py``;
  the names used here need no escaping and the benchmark uses one server, so no
  placement hashing is involved);
- ZooKeeper members ``CHROOT/TOPIC/HOST:BINARY`` (``sg/drivers/zookeeper.py``). The driver's
  are ephemeral; the seeded ones are persistent, because a listing reads only the
  children's names, and one lost seeding session (kazoo's pings starve while a
  100,000-row listing holds the GIL) would otherwise take every member with it.
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import asyncpg
from kazoo.client import KazooClient
from pymemcache.client.base import Client as PymemcacheClient

BINARY = "sg-compute"
TOPIC = "compute"
MC_PREFIX = "sgbench"
ZK_CHROOT = "/sgbench"
#: Long enough for the whole run: nothing seeded may expire while it is measured.
TTL = 3600

SQLITE_NOW = "((julianday('now') - 2440587.5) * 86400.0)"
#: The columns every store SELECT returns (``binary`` is reserved in PostgreSQL).
COLUMNS = (
    'id, uuid, host, "binary", topic, version, disabled, disabled_reason, forced_down, '
    "has_left, report_count, created_at, updated_at, check_failure"
)


def host(i: int) -> str:
    """The host name of seeded service number ``i``."""
    return f"host-{i:06d}"


def mc_key(i: int, topic: str = TOPIC) -> bytes:
    """The memcached member key of seeded service ``i``."""
    return f"{MC_PREFIX}:m:{topic}:{host(i)}:{BINARY}".encode()


def zk_topic_path(topic: str = TOPIC) -> str:
    """The znode holding the members of ``topic``."""
    return f"{ZK_CHROOT}/{topic}"


def zk_member_path(i: int, topic: str = TOPIC) -> str:
    """The ephemeral znode of seeded service ``i``."""
    return f"{zk_topic_path(topic)}/{host(i)}:{BINARY}"


def sqlite_grow(path: str, start: int, stop: int, topic: str = TOPIC) -> None:
    """Insert services ``start..stop-1``, each with one fresh beat, into a SQLite file."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 60000")
        conn.execute("BEGIN")
        conn.executemany(
            'INSERT INTO services (uuid, host, "binary", topic, version, report_count, created_at, '
            "updated_at) "
            f"VALUES (?, ?, ?, ?, 1, 1, {SQLITE_NOW}, {SQLITE_NOW})",
            [(str(uuid.uuid4()), host(i), BINARY, topic) for i in range(start, stop)],
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


async def postgres_grow(dsn: str, start: int, stop: int, topic: str = TOPIC) -> None:
    """Insert services ``start..stop-1``, each with one fresh beat, in one statement."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            'INSERT INTO services (uuid, host, "binary", topic, version, report_count, updated_at) '
            "SELECT gen_random_uuid(), h, $2, $3, 1, 1, clock_timestamp() FROM unnest($1::text[]) AS h",
            [host(i) for i in range(start, stop)],
            BINARY,
            topic,
        )
    finally:
        await conn.close()


def memcached_grow(port: int, start: int, stop: int) -> None:
    """Write the member keys of services ``start..stop-1`` (pipelined sets)."""
    client = PymemcacheClient(("127.0.0.1", port))
    try:
        for lo in range(start, stop, 5000):
            failed = client.set_many(
                {mc_key(i): b"1" for i in range(lo, min(stop, lo + 5000))}, expire=TTL, noreply=False
            )
            assert not failed, f"memcached refused {len(failed)} keys"
    finally:
        client.close()


def zookeeper_grow(kazoo: KazooClient, paths: list[str]) -> None:
    """Create ``paths`` (persistent, see above) in transactions of 1,000."""
    if not paths:
        return
    kazoo.ensure_path(paths[0].rsplit("/", 1)[0])
    pending: list[Any] = []
    for lo in range(0, len(paths), 1000):
        tx = kazoo.transaction()
        for path in paths[lo : lo + 1000]:
            tx.create(path, b"")
        pending.append(tx.commit_async())
        if len(pending) >= 8:
            _check_tx(pending.pop(0).get())
    for result in pending:
        _check_tx(result.get())


def _check_tx(results: list[Any]) -> None:
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, f"ZooKeeper refused {len(errors)} creates: {errors[0]!r}"


class ToozMemcachedSeeder:
    """tooz's memcached membership written through tooz's own client and serializer.

    Joining N coordinators one by one costs N connections; this writes what
    ``join_group`` and each member's heartbeat write (tooz 9.1: a group key with a
    msgpack dict of members, one ``_TOOZ_MEMBER_<id>`` key per member).
    """

    def __init__(self, coordinator: Any, group: bytes) -> None:
        self.coordinator = coordinator
        self.group = group
        self.members: dict[bytes, dict[bytes, Any]] = {}

    def grow(self, start: int, stop: int) -> None:
        """Add members ``start..stop-1``."""
        client = self.coordinator.client
        ids = [f"member-{i:06d}".encode() for i in range(start, stop)]
        alive = self.coordinator.STILL_ALIVE
        for lo in range(0, len(ids), 5000):
            chunk = {self.coordinator.MEMBER_PREFIX + m: alive for m in ids[lo : lo + 5000]}
            assert not client.set_many(chunk, expire=TTL, noreply=False)
        self.members.update({m: {b"capabilities": None} for m in ids})
        client.set(self.coordinator.GROUP_PREFIX + self.group, self.members, noreply=False)
