"""pytest fixtures for servicegroup (registered through the ``pytest11`` entry point)."""

from __future__ import annotations

import importlib
import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from sg.testing.ensemble import ZooKeeperEnsemble
from sg.testing.memcached import MemcachedServer
from sg.testing.pgha import PostgresHA
from sg.testing.servers import MissingServer, PostgresServer
from sg.testing.zookeeper import ZooKeeperServer

_counter = itertools.count()


def in_ci() -> bool:
    """True under CI (``CI=true``), where a missing server must fail, not skip."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_server(exc: MissingServer) -> None:
    """Fail under CI, skip elsewhere."""
    if in_ci():
        pytest.fail(f"{exc} (CI=true: a missing server is a failure)")
    pytest.skip(str(exc))


def import_extra(module: str, extra: str) -> Any:
    """Import a backend's client library: skip without it, but fail under CI."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing_server(
            MissingServer(f"{module} is not installed: pip install 'servicegroup[{extra}]' ({exc})")
        )
        raise


@pytest.fixture(scope="session")
def sg_postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster for the whole test session."""
    try:
        server = PostgresServer()
    except MissingServer as exc:
        missing_server(exc)
        raise
    with server:
        yield server


@pytest.fixture
async def sg_postgres_url(sg_postgres: PostgresServer) -> AsyncIterator[str]:
    """A fresh, empty database in the session's cluster; dropped after the test."""
    asyncpg: Any = import_extra("asyncpg", "postgres")
    name = f"sg_test_{os.getpid()}_{next(_counter)}"
    conn = await asyncpg.connect(sg_postgres.url(), timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    yield sg_postgres.url(name)
    conn = await asyncpg.connect(sg_postgres.url(), timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _memcached_servers(count: int, verbose: bool = False) -> list[MemcachedServer]:
    servers: list[MemcachedServer] = []
    try:
        for _ in range(count):
            servers.append(MemcachedServer(verbose=verbose).start())
    except MissingServer as exc:
        missing_server(exc)
        raise
    except BaseException:
        for server in servers:
            server.close()
        raise
    return servers


@pytest.fixture(scope="session")
def sg_memcached() -> Iterator[MemcachedServer]:
    """A private memcached server for the whole test session (share it through a
    per-test key prefix; see ``sg_memcached_url``)."""
    (server,) = _memcached_servers(1)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def sg_memcached3() -> Iterator[list[MemcachedServer]]:
    """Three private memcached servers for the whole test session."""
    servers = _memcached_servers(3)
    try:
        yield servers
    finally:
        for server in servers:
            server.close()


def memcached_url(servers: list[MemcachedServer], prefix: str | None = None) -> str:
    """A ``memcached://`` driver URL for ``servers`` with a fresh key prefix."""
    prefix = prefix or f"t{os.getpid()}x{next(_counter)}"
    return f"memcached://{','.join(s.address for s in servers)}?prefix={prefix}"


@pytest.fixture
def sg_memcached_url(sg_memcached: MemcachedServer) -> str:
    """A driver URL on the session's memcached with a key prefix private to the test."""
    return memcached_url([sg_memcached])


@pytest.fixture
def sg_memcached3_url(sg_memcached3: list[MemcachedServer]) -> str:
    """A driver URL on the session's three memcached servers, private key prefix."""
    return memcached_url(sg_memcached3)


@pytest.fixture
def sg_memcached_factory() -> Iterator[Callable[..., list[MemcachedServer]]]:
    """Start servers of the test's own (to kill or restart): ``factory(count, verbose=False)``.
    All are stopped after the test."""
    started: list[MemcachedServer] = []

    def factory(count: int = 1, *, verbose: bool = False) -> list[MemcachedServer]:
        servers = _memcached_servers(count, verbose)
        started.extend(servers)
        return servers

    try:
        yield factory
    finally:
        for server in started:
            server.close()


@pytest.fixture
async def sg_memory_group() -> AsyncIterator[Any]:
    """A ServiceGroup on a private ``memory://`` store and driver (1 s report interval)."""
    from sg import ServiceGroup

    name = f"test{next(_counter)}"
    async with ServiceGroup.from_urls(
        f"memory://{name}", f"memory://{name}", report_interval=1.0, service_down_time=3.0
    ) as group:
        yield group


def start_zookeeper(tick_time: int = 200) -> ZooKeeperServer:
    """Start a private ZooKeeper (fails under CI, skips elsewhere, if not installed).

    For tests that stop or restart their server: use it as a context manager.
    """
    try:
        server = ZooKeeperServer(tick_time=tick_time)
    except MissingServer as exc:
        missing_server(exc)
        raise
    return server.start()


@pytest.fixture(scope="session")
def sg_zookeeper() -> Iterator[ZooKeeperServer]:
    """A private ZooKeeper for the whole session (tickTime 200 ms: 0.4-10 s sessions)."""
    server = start_zookeeper()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def sg_zookeeper_url(sg_zookeeper: ZooKeeperServer) -> str:
    """A ``zookeeper://`` URL with a chroot private to the test (2 s sessions)."""
    return sg_zookeeper.url(f"sg-test-{os.getpid()}-{next(_counter)}", session_timeout=2)


@pytest.fixture
def sg_zookeeper_ensemble() -> Iterator[ZooKeeperEnsemble]:
    """A 3-server ZooKeeper quorum of the test's own (tickTime 200 ms: 0.4-10 s
    sessions), started and serving; the test may kill, stop and restart members.
    ``.url(chroot, session_timeout=2)`` names all three. Stopped after the test."""
    try:
        ensemble = ZooKeeperEnsemble(3)
    except MissingServer as exc:
        missing_server(exc)
        raise
    with ensemble:
        yield ensemble


@pytest.fixture
def sg_postgres_ha() -> Iterator[PostgresHA]:
    """A PostgreSQL primary and a streaming standby of the test's own, both running;
    ``.url()`` names both with ``target_session_attrs=read-write``. The test may stop
    the primary and promote the standby. Both are removed after the test."""
    try:
        ha = PostgresHA()
    except MissingServer as exc:
        missing_server(exc)
        raise
    with ha:
        yield ha
