"""The SQL store's dialects and URLs: options and their validation, rendered statements,
and the databases' native timeouts (the only timeouts a store keeps)."""

from __future__ import annotations

import re
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import closing
from pathlib import Path

import anyio
import pytest

from sg.errors import BackendTimeout, BackendUnavailable, ConfigError
from sg.model import Actor, Member, ServiceKey
from sg.store import postgresql, sqlite
from sg.store.base import Store, SurveyQuery
from sg.store.memory import MemoryStore
from sg.store.sql import Dialect, Statements, migrations
from sg.timings import Timings

TIMINGS = Timings(store_timeout=3.5)
MEMBER = Member("h1", "sg-web", "web", 2)


# -- dialects ------------------------------------------------------------------------------


def test_placeholders_are_numbered_in_order_for_postgresql() -> None:
    assert postgresql.DIALECT.params("a = ? AND b = ? OR c = ?") == "a = $1 AND b = $2 OR c = $3"
    assert sqlite.DIALECT.params("a = ? AND b = ?") == "a = ? AND b = ?"


@pytest.mark.parametrize("dialect", [sqlite.DIALECT, postgresql.DIALECT], ids=["sqlite", "postgresql"])
def test_every_statement_is_rendered_in_the_dialect(dialect: Dialect) -> None:
    sql = Statements(dialect)
    texts = [v for v in vars(sql).values() if isinstance(v, str)]
    assert len(texts) > 10
    for text in texts:
        assert "{" not in text, text
        if dialect.numbered:
            assert "?" not in text, text
    assert dialect.clock in sql.beat
    # Nine parameters, numbered once each where the dialect numbers them.
    assert [sql.register.count(f"${n}") for n in range(1, 11)] == (
        [1] * 9 + [0] if dialect.numbered else [0] * 10
    )
    assert sql.register.count("?") == (0 if dialect.numbered else 9)
    # The schema is one definition in both dialects; only type names and literals differ.
    # 3 is the fleet guard's (beat_gap, driver), 4 the operators' tools' (zone, audit).
    assert sorted(migrations(dialect)) == [1, 2, 3, 4]
    # A filtered survey: nine parameters for its stale rows' subqueries, then its clauses'.
    survey = sql.survey(["services.topic = ?", "services.host = ?"])
    assert survey.count("?") == (0 if dialect.numbered else 11)
    numbers = [int(n) for n in re.findall(r"\$(\d+)", survey)]
    assert numbers == (list(range(1, 12)) if dialect.numbered else [])
    assert "?" not in sql.survey([])
    assert "$" not in sql.survey([])
    assert dialect.serial_key in migrations(dialect)[1][0]


# -- sqlite URLs ---------------------------------------------------------------------------


def test_sqlite_url_timeout_defaults_to_store_timeout(tmp_path: Path) -> None:
    store = sqlite.SQLiteStore.from_url(f"sqlite://{tmp_path}/a.db", TIMINGS)
    assert isinstance(store, Store)
    assert (store.path, store.connector.timeout, store.timeout) == (f"{tmp_path}/a.db", 3.5, 3.5)
    store = sqlite.SQLiteStore.from_url(f"sqlite://{tmp_path}/a.db?timeout=0.25", TIMINGS)
    assert (store.connector.timeout, store.timeout) == (0.25, 0.25)
    assert sqlite.SQLiteStore.from_url("sqlite:rel/b.db", TIMINGS).path == "rel/b.db"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://host/x.db", "sqlite takes no host"),
        ("sqlite:///tmp/", "names no database file"),
        ("sqlite://", "names no database file"),
        ("sqlite:///tmp/x.db?journal=off", "unknown sqlite option 'journal'"),
        ("sqlite:///tmp/x.db?timeout=soon", "timeout must be a positive number"),
        ("sqlite:///tmp/x.db?timeout=0", "timeout must be a positive number"),
        ("sqlite:///tmp/x.db?timeout=-1", "timeout must be a positive number"),
        ("sqlite:///tmp/x.db?timeout=nan", "timeout must be a positive number"),
    ],
)
def test_sqlite_url_errors_name_the_problem(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        sqlite.SQLiteStore.from_url(url, TIMINGS)


async def test_sqlite_busy_timeout_is_the_url_timeout(tmp_path: Path) -> None:
    """Another process holds the write lock: the store waits ``timeout``, then fails."""
    path = tmp_path / "locked.db"
    store = sqlite.SQLiteStore.from_url(f"sqlite://{path}?timeout=0.3", TIMINGS)
    await store.open()
    try:
        with closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            began = time.monotonic()
            with pytest.raises(BackendUnavailable, match="database is locked"):
                await store.register(MEMBER)
            waited = time.monotonic() - began
            other.execute("ROLLBACK")
        # SQLite's busy handler sleeps in steps: allow 0.1 s early, 2 s late on a loaded machine.
        assert 0.2 <= waited <= 2.3, waited
        assert (await store.register(MEMBER)).version == 2
    finally:
        await store.close()


# -- postgresql URLs -----------------------------------------------------------------------


def test_postgresql_url_options_and_passthrough() -> None:
    store = postgresql.PostgresStore.from_url("postgres://sg:pw@db1:5433/sg", TIMINGS)
    url = store.connector.url
    assert (url.dsn, url.timeout, url.pool_min, url.pool_max) == (
        "postgresql://sg:pw@db1:5433/sg",
        3.5,
        0,
        10,
    )
    assert store.timeout == 3.5
    store = postgresql.PostgresStore.from_url(
        "postgresql://sg@db1/sg?pool_min=2&sslmode=verify-full&pool_max=4&timeout=1.5&application_name=x",
        TIMINGS,
    )
    url = store.connector.url
    assert url.dsn == "postgresql://sg@db1/sg?sslmode=verify-full&application_name=x"
    assert (url.timeout, url.pool_min, url.pool_max, store.timeout) == (1.5, 2, 4, 1.5)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("pool_max=0", "pool_max >= 1"),
        ("pool_min=5&pool_max=4", "pool_min <= pool_max"),
        ("pool_min=-1", "0 <= pool_min"),
        ("pool_min=x", "pool_min must be an integer, got 'x'"),
        ("pool_max=2.5", "pool_max must be an integer, got '2.5'"),
        ("timeout=abc", "timeout must be a positive number"),
        ("timeout=0", "timeout must be a positive number"),
        ("timeout=inf", "timeout must be a positive number"),
    ],
)
def test_postgresql_url_errors_name_the_option_and_hide_the_password(query: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        postgresql.PostgresStore.from_url(f"postgresql://sg:s3cr3t@db1/sg?{query}", TIMINGS)
    assert "s3cr3t" not in str(info.value)


def test_postgresql_url_needs_a_database_and_repr_hides_the_password() -> None:
    with pytest.raises(ConfigError, match="names no database"):
        postgresql.PostgresStore.from_url("postgresql://sg:s3cr3t@db1:5432/", TIMINGS)
    store = postgresql.PostgresStore.from_url("postgresql://sg:s3cr3t@db1:5432/sg", TIMINGS)
    assert "s3cr3t" not in repr(store)
    assert "s3cr3t" not in repr(store.connector.url)


async def test_postgresql_command_timeout_is_the_url_timeout(sg_postgres_url: str) -> None:
    """A statement blocked by another session's lock ends after ``timeout``, as BackendTimeout."""
    import asyncpg

    store = postgresql.PostgresStore.from_url(f"{sg_postgres_url}?timeout=0.3", TIMINGS)
    await store.open()
    other = await asyncpg.connect(sg_postgres_url, timeout=10)
    try:
        async with other.transaction():
            await other.execute("LOCK TABLE services IN ACCESS EXCLUSIVE MODE")
            began = time.monotonic()
            with pytest.raises(BackendTimeout):
                await store.get(ServiceKey("h1", "sg-web"))
            waited = time.monotonic() - began
        assert 0.25 <= waited <= 2.3, waited
        assert await store.get(ServiceKey("h1", "sg-web")) is None
    finally:
        await other.close()
        await store.close()


def test_memory_url() -> None:
    store = MemoryStore.from_url("memory://urls", TIMINGS)
    assert isinstance(store, Store)
    assert store.shared_name == "urls"
    with pytest.raises(ConfigError, match="memory takes only a name"):
        MemoryStore.from_url("memory://urls?x=1", TIMINGS)


# -- the audit row commits with its change -------------------------------------------------


async def _audit_failure_rolls_back(store: Store, drop: Callable[[], Awaitable[None]]) -> None:
    await store.open()
    try:
        await store.register(MEMBER)
        await drop()
        with pytest.raises(BackendUnavailable):
            await store.set_disabled(MEMBER.key, True, "x", actor=Actor("ops", "api"))
        current = await store.get(MEMBER.key)
        assert current is not None
        assert not current.disabled  # the change went with its failed audit row
        with pytest.raises(BackendUnavailable):
            await store.delete(MEMBER.key, actor=Actor("ops", "api"))
        assert await store.get(MEMBER.key) is not None
        # Without an actor there is no audit row to fail.
        assert (await store.set_disabled(MEMBER.key, True, "x")).disabled
    finally:
        await store.close()


async def test_sqlite_admin_change_and_audit_row_are_one_transaction(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    store = sqlite.SQLiteStore.from_url(f"sqlite://{path}", TIMINGS)

    async def drop() -> None:
        with closing(sqlite3.connect(path)) as db:
            db.execute("DROP TABLE service_actions")
            db.commit()

    await _audit_failure_rolls_back(store, drop)


async def test_postgresql_admin_change_and_audit_row_are_one_transaction(sg_postgres_url: str) -> None:
    import asyncpg

    store = postgresql.PostgresStore.from_url(sg_postgres_url, TIMINGS)

    async def drop() -> None:
        conn = await asyncpg.connect(sg_postgres_url)
        try:
            await conn.execute("DROP TABLE service_actions")
        finally:
            await conn.close()

    await _audit_failure_rolls_back(store, drop)  # a fresh database, dropped after the test


async def test_postgresql_store_call_is_one_statement(sg_postgres_url: str) -> None:
    # asyncpg's default pool reset sent a second statement (RESET ALL, ...) after each
    # call; the store leaves no session state, so it sends none.
    store = postgresql.PostgresStore.from_url(f"{sg_postgres_url}?pool_max=1", TIMINGS)
    try:
        await store.open()
        member = Member("one-trip", "nova-compute", "compute")
        await store.register(member)
        pool = await store.connector._get_pool()
        sent: list[str] = []
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda record: sent.append(record.query))
        await store.beat(member.key)
        assert await store.get(member.key) is not None
        assert len(sent) == 2, sent
        assert not any("RESET" in query for query in sent)

        # A transaction left open is still rolled back on release (asyncpg does that).
        async with pool.acquire() as conn:
            await conn.execute("BEGIN")
            await conn.execute("SELECT 1")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
    finally:
        await store.close()


@pytest.mark.parametrize("dialect", [sqlite.DIALECT, postgresql.DIALECT], ids=["sqlite", "postgresql"])
def test_a_survey_statement_is_rendered_once_per_set_of_clauses(dialect: Dialect) -> None:
    """Rendered once and kept (the same text each time: asyncpg finds its prepared
    statement by it), each set of clauses its own."""
    sql = Statements(dialect)
    key = ["services.host = ?", 'services."binary" = ?']
    first = sql.survey(key)
    assert sql.survey(list(key)) is first
    assert first == Statements(dialect).survey(key)
    by_topic, by_host = sql.survey(["services.topic = ?"]), sql.survey(["services.host = ?"])
    assert len({first, by_topic, by_host, sql.survey([])}) == 4
    assert "services.topic = " in by_topic
    assert "services.topic = " not in by_host
    assert sql.survey(key[::-1]) != first


async def test_sqlite_listings_read_tuples_and_other_statements_rows(tmp_path: Path) -> None:
    """A survey reads plain tuples; every statement after it, a cancelled survey's
    included, reads sqlite3.Row again (the audit reads its change's row by name)."""
    store = sqlite.SQLiteStore.from_url(f"sqlite://{tmp_path / 'r.db'}", TIMINGS)
    try:
        await store.register(MEMBER)
        query = SurveyQuery(60.0, 90.0, None, None, None, MEMBER.key, None)
        [found] = (await store.survey(query)).services
        assert found.key == MEMBER.key
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.survey, query)
            # Blocked in its statement's thread hop, the row factory off: cancel it there.
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
        db = store.connector._db
        assert db is not None
        assert db.row_factory is sqlite3.Row
        changed = await store.set_disabled(MEMBER.key, True, "why", actor=Actor("ops", "api"))
        assert changed.disabled
        [audit] = await store.actions(key=MEMBER.key)
        assert (audit.action, audit.actor) == ("disable", "ops")
        assert db.row_factory is sqlite3.Row
    finally:
        await store.close()


async def test_sqlite_rows_are_not_kept_after_the_read(tmp_path: Path) -> None:
    """aiosqlite's thread holds its last result until its next statement: the rows a
    read returns must be the only holder of their tuples (a listing of 100,000 rows
    kept them alive afterwards: 23 MiB)."""
    store = sqlite.SQLiteStore.from_url(f"sqlite://{tmp_path / 'k.db'}", TIMINGS)
    try:
        await store.register(MEMBER)
        query = SurveyQuery(60.0, 90.0, None, None, None, None, None)
        db = store.connector._db
        assert db is not None
        connection = sqlite._Connection(db)
        for read in (connection.fetchtuples, connection.fetchall):
            rows = await read("SELECT host, id FROM services", ())
            assert len(rows) == 1
            # Held by the list and by getrefcount's own argument, nothing else (counted
            # outside the assert: pytest's rewriting keeps a reference of its own).
            refs = sys.getrefcount(rows[0])
            assert refs == 2, read.__name__
        [found] = (await store.survey(query)).services
        assert found.key == MEMBER.key
    finally:
        await store.close()
