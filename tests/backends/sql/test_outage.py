"""Backend faults: the heartbeat outlives them, readers see unknown, secrets stay out of logs."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from structlog.testing import capture_logs

from sg import ConfigError, Member, ServiceGroup
from sg.errors import BackendUnavailable
from sg.testing import PostgresServer, free_port
from sg.testing.plugin import missing_server
from sg.testing.servers import MissingServer
from tests.support.waiting import eventually

SPEC = Member(host="h1", binary="sg-compute", topic="compute")


@pytest.fixture
def own_postgres() -> PostgresServer:
    """A PostgreSQL of this test's own, since the test stops and restarts it."""
    try:
        server = PostgresServer()
    except MissingServer as exc:
        missing_server(exc)
        raise
    server.start()
    yield server
    server.stop()


async def test_heartbeat_survives_postgres_restart(own_postgres: PostgresServer) -> None:
    url = own_postgres.url()
    async with ServiceGroup.from_urls(
        url, report_interval=0.2, service_down_time=1.0, store_timeout=1.0
    ) as group:
        hb = group.heartbeat(SPEC)
        assert await hb.beat_once()
        assert (await group.get("h1", "sg-compute")).is_up
        own_postgres.stop_server()
        with capture_logs() as logs:
            assert not await hb.beat_once()
            assert not await hb.beat_once()
        assert hb.stats.failures == 2
        failed = [e for e in logs if e["event"] == "beat_failed"]
        assert len(failed) == 2  # the 1st and 2nd failure; then the 4th, 8th, ...
        assert failed[0]["backend"] == "store"
        verdict = await group.verdict(hb.member)
        assert (verdict.state, verdict.reason) == ("unknown", "store_unreachable")
        with pytest.raises(BackendUnavailable):
            await group.list()
        own_postgres.start_server()
        await eventually(hb.beat_once, bool, 20, "beat after PostgreSQL is back")
        assert (await group.get("h1", "sg-compute")).is_up


async def test_postgres_password_never_logged() -> None:
    url = f"postgresql://sg:s3cr3t-pw@127.0.0.1:{free_port()}/sg"
    with capture_logs() as logs:
        async with ServiceGroup.from_urls(url, report_interval=0.2, service_down_time=1.0) as group:
            hb = group.heartbeat(SPEC)
            assert not await hb.beat_once()
    assert logs, "the failures were logged"
    assert "s3cr3t-pw" not in repr(logs)
    assert "s3cr3t-pw" not in repr(group.store)


async def test_sqlite_refuses_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "sg.db"
    async with ServiceGroup.from_urls(f"sqlite://{path}") as group:
        await group.list()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO sg_schema (version) VALUES (99)")
    group = ServiceGroup.from_urls(f"sqlite://{path}")
    with pytest.raises(ConfigError, match="schema version 99, newer than this release"):
        await group.store.open()
    await group.aclose()


async def test_postgres_schema_is_created_once_by_concurrent_openers(sg_postgres_url: str) -> None:
    import anyio

    groups = [ServiceGroup.from_urls(sg_postgres_url) for _ in range(5)]
    async with anyio.create_task_group() as tg:
        for g in groups:
            tg.start_soon(g.store.open)
    for g in groups:
        await g.aclose()
    import asyncpg

    from sg.store.sql import SCHEMA_VERSION

    conn = await asyncpg.connect(sg_postgres_url)
    try:
        # One row per migration, each applied once.
        versions = [r[0] for r in await conn.fetch("SELECT version FROM sg_schema ORDER BY version")]
        assert versions == list(range(1, SCHEMA_VERSION + 1))
    finally:
        await conn.close()


def test_missing_server_fails_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SG_PG_BINDIR", str(tmp_path))
    with pytest.raises(MissingServer, match="apt-get install postgresql") as info:
        PostgresServer()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        missing_server(info.value)
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception):
        missing_server(info.value)


def test_library_does_not_configure_logging() -> None:
    """Importing and using the library leaves structlog as the application set it."""
    import subprocess
    import sys

    code = (
        "import anyio, structlog, sg, sg.cli, sg.group, sg.heartbeat, sg.store.sqlite, sg.drivers.db\n"
        "async def main():\n"
        "    async with sg.ServiceGroup.from_urls('memory://x', 'memory://x') as g:\n"
        "        async with g.join('b', 't', host='h'):\n"
        "            pass\n"
        "anyio.run(main)\n"
        "print(structlog.is_configured())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"


async def drop_schema(store_url: str) -> None:
    """Drop our tables from outside, as an operator restoring an empty database would."""
    if store_url.startswith("sqlite:"):
        with closing(sqlite3.connect(urlsplit(store_url).path)) as db:
            db.executescript("DROP TABLE services; DROP TABLE sg_schema")
        return
    import asyncpg

    conn = await asyncpg.connect(store_url)
    try:
        await conn.execute("DROP TABLE services; DROP TABLE sg_schema")
    finally:
        await conn.close()


async def test_schema_dropped_under_live_agent_is_recreated(store_url: str) -> None:
    async with ServiceGroup.from_urls(store_url, report_interval=0.2, service_down_time=1.0) as group:
        hb = group.heartbeat(SPEC)
        assert await hb.beat_once()
        await drop_schema(store_url)
        await eventually(hb.beat_once, bool, 10, "beat after the schema was dropped")
        assert hb.stats.rejoins == 1
        assert (await group.get("h1", "sg-compute")).is_up
