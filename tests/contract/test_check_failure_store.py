"""Schema 2: the check failure reason on the record, on every store, and the migration
from a schema-1 database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sg import ServiceGroup
from sg.model import Member, ServiceKey
from sg.store import sqlite as sqlite_store
from sg.store.base import MAX_CHECK_FAILURE
from sg.store.memory import MemoryStore
from sg.store.sql import SCHEMA_VERSION, migrations
from sg.testing.plugin import import_extra
from tests.support.waiting import eventually

KEY = ServiceKey("h1", "sg-web")


async def test_check_failure_is_stored_shown_as_verdict_and_cleared_by_a_beat(group: ServiceGroup) -> None:
    store = group.store
    service = await store.register(Member("h1", "sg-web", "web", 3))
    # A driver with a second signal (ZooKeeper) must hold the member for "up".
    await group.driver.join(service.member)
    assert await store.beat(KEY) is not None
    beaten = await group.get("h1", "sg-web")
    assert beaten.verdict.state == "up"
    assert beaten.service.updated_at is not None
    # Let the store's clock move past the beat's stamp (SQLite's has 1 ms resolution), so
    # a write that stamped updated_at would show.
    await eventually(
        lambda: group.get("h1", "sg-web"),
        lambda s: (s.verdict.age or 0.0) >= 0.01,
        timeout=5.0,
        what="the store clock moves on",
    )

    assert await store.set_check_failure(KEY, "http:http://127.0.0.1:1/: Connection refused")
    status = await group.get("h1", "sg-web")
    assert status.service.check_failure == "http:http://127.0.0.1:1/: Connection refused"
    assert status.verdict.state == "down"
    assert status.verdict.reason == "check_failed"
    assert status.verdict.detail == "http:http://127.0.0.1:1/: Connection refused"
    assert status.as_dict()["check_failure"] == "http:http://127.0.0.1:1/: Connection refused"
    # A held-down service never counts as live for upgrades.
    assert await group.min_version("sg-web", only_up=True) is None
    # The check failure never touches updated_at nor counts as a report: the stamp read
    # after the beat, before the failure was set, is still the record's.
    assert status.service.updated_at == beaten.service.updated_at
    assert status.service.report_count == beaten.service.report_count

    # Long reasons are cut, not refused.
    assert await store.set_check_failure(KEY, "x" * (MAX_CHECK_FAILURE + 100))
    assert len((await store.get(KEY)).check_failure or "") == MAX_CHECK_FAILURE  # type: ignore[union-attr]

    assert await store.beat(KEY) is not None
    status = await group.get("h1", "sg-web")
    assert status.service.check_failure is None
    assert status.verdict.state == "up"
    assert await group.min_version("sg-web", only_up=True) == 3

    assert await store.set_check_failure(KEY, "exec:false: exit status 1")
    assert await store.set_check_failure(KEY, None)
    assert (await store.get(KEY)).check_failure is None  # type: ignore[union-attr]
    assert not await store.set_check_failure(ServiceKey("h1", "absent"), "x")


async def test_memory_store_keeps_check_failure() -> None:
    store = MemoryStore("check-failure")
    await store.register(Member("h1", "sg-web", "web", 0))
    await store.beat(KEY)
    beaten = await store.get(KEY)
    assert beaten is not None
    assert beaten.updated_at is not None
    assert await store.set_check_failure(KEY, "tcp:127.0.0.1:1: Connection refused")
    assert (await store.get(KEY)).updated_at == beaten.updated_at  # type: ignore[union-attr]
    assert (await store.get(KEY)).check_failure == "tcp:127.0.0.1:1: Connection refused"  # type: ignore[union-attr]
    await store.beat(KEY)
    assert (await store.get(KEY)).check_failure is None  # type: ignore[union-attr]
    assert not await store.set_check_failure(ServiceKey("h1", "absent"), None)


def _schema_1_sqlite(path: Path) -> None:
    db = sqlite3.connect(path)
    with db:
        db.execute("CREATE TABLE sg_schema (version INTEGER NOT NULL)")
        for statement in migrations(sqlite_store.DIALECT)[1]:
            db.execute(statement)
        db.execute("INSERT INTO sg_schema (version) VALUES (1)")
        db.execute(
            'INSERT INTO services (uuid, host, "binary", topic, version, created_at, updated_at, '
            "report_count) VALUES ('u-1', 'h1', 'sg-web', 'web', 4, 1.0, 2.0, 7)"
        )
    db.close()


async def test_sqlite_schema_1_is_migrated_to_the_current_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _schema_1_sqlite(path)
    async with ServiceGroup.from_urls(f"sqlite://{path}") as group:
        old = await group.store.get(KEY)
        assert old is not None
        assert old.report_count == 7
        assert old.version == 4
        assert old.check_failure is None
        assert old.driver is None  # migration 3: records from before it name no driver
        assert await group.store.set_check_failure(KEY, "pidfile:/run/x.pid: pid file does not exist")
    db = sqlite3.connect(path)
    try:
        versions = [r[0] for r in db.execute("SELECT version FROM sg_schema ORDER BY version")]
        assert versions == list(range(1, SCHEMA_VERSION + 1))
        assert db.execute("SELECT check_failure FROM services").fetchone()[0].startswith("pidfile:")
        assert db.execute("SELECT zone FROM services").fetchone()[0] == "internal"
        assert db.execute("SELECT COUNT(*) FROM service_actions").fetchone()[0] == 0
    finally:
        db.close()
    assert SCHEMA_VERSION == 4


async def test_postgres_schema_1_is_migrated_to_the_current_on_open(sg_postgres_url: str) -> None:
    asyncpg = import_extra("asyncpg", "postgres")
    from sg.store import postgresql as postgres_store

    conn = await asyncpg.connect(sg_postgres_url, timeout=10)
    try:
        await conn.execute("CREATE TABLE sg_schema (version integer NOT NULL)")
        for statement in migrations(postgres_store.DIALECT)[1]:
            await conn.execute(statement)
        await conn.execute("INSERT INTO sg_schema (version) VALUES (1)")
        await conn.execute(
            'INSERT INTO services (uuid, host, "binary", topic, version, report_count) '
            "VALUES (gen_random_uuid(), 'h1', 'sg-web', 'web', 4, 7)"
        )
    finally:
        await conn.close()
    async with ServiceGroup.from_urls(sg_postgres_url) as group:
        old = await group.store.get(KEY)
        assert old is not None
        assert old.report_count == 7
        assert old.check_failure is None
        assert await group.store.set_check_failure(KEY, "systemd:nginx.service: not active (failed)")
        status = await group.get("h1", "sg-web")
        assert status.verdict.reason == "check_failed"
    conn = await asyncpg.connect(sg_postgres_url, timeout=10)
    try:
        rows = await conn.fetch("SELECT version FROM sg_schema ORDER BY version")
        assert [r[0] for r in rows] == list(range(1, SCHEMA_VERSION + 1))
        assert await conn.fetchval("SELECT check_failure FROM services") == (
            "systemd:nginx.service: not active (failed)"
        )
    finally:
        await conn.close()
