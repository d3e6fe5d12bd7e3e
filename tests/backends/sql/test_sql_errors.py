"""sg/store/sql.py: a database fault in any call becomes BackendUnavailable naming the
backend and the call (SQLite; the mapping is shared by both dialects)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from sg.errors import BackendUnavailable, NotFound
from sg.model import Member, ServiceKey
from sg.store.sql import SQLStore, to_datetime
from sg.store.sqlite import SQLiteStore
from sg.timings import Timings

KEY = ServiceKey("h1", "sg-web")
MEMBER = Member("h1", "sg-web", "web", 1)


class _BrokenConnection:
    """Every statement fails as a corrupt or unreadable database does."""

    async def fetchone(self, sql: str, args: Any = ()) -> Any:
        raise sqlite3.OperationalError("disk I/O error")

    async def fetchall(self, sql: str, args: Any = ()) -> Any:
        raise sqlite3.OperationalError("disk I/O error")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLStore]:
    s = SQLiteStore.from_url(f"sqlite://{tmp_path}/sg.db", Timings())
    await s.open()
    try:
        yield s
    finally:
        await s.close()


CALLS: list[tuple[str, Callable[[SQLStore], Awaitable[object]]]] = [
    ("register", lambda s: s.register(MEMBER)),
    ("beat", lambda s: s.beat(KEY)),
    ("get", lambda s: s.get(KEY)),
    ("get_by_uuid", lambda s: s.get_by_uuid("6f1c2a4e-0000-4000-8000-000000000000")),
    ("list", lambda s: s.list(topic="web")),
    ("set_disabled", lambda s: s.set_disabled(KEY, True, "x")),
    ("set_forced_down", lambda s: s.set_forced_down(KEY, True)),
    ("set_check_failure", lambda s: s.set_check_failure(KEY, "x")),
    ("mark_left", lambda s: s.mark_left(KEY)),
    ("delete", lambda s: s.delete(KEY)),
    ("min_version", lambda s: s.min_version("sg-web")),
    ("ping", lambda s: s.ping()),
]


@pytest.mark.parametrize(("what", "call"), CALLS, ids=[c[0] for c in CALLS])
async def test_a_fault_names_the_store_and_the_call(
    store: SQLStore, what: str, call: Callable[[SQLStore], Awaitable[object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.register(MEMBER)

    @asynccontextmanager
    async def broken() -> AsyncIterator[_BrokenConnection]:
        yield _BrokenConnection()

    monkeypatch.setattr(store.connector, "session", broken)
    with pytest.raises(BackendUnavailable) as info:
        await call(store)
    assert info.value.backend == "sqlite"
    assert str(info.value) == f"sqlite unavailable: {what}: OperationalError: disk I/O error"


async def test_results_of_each_call(store: SQLStore) -> None:
    registered = await store.register(MEMBER)
    first = await store.beat(KEY)
    second = await store.beat(KEY)
    assert first is not None
    assert second is not None
    assert (first.service_id, first.report_count) == (registered.id, 1)
    assert (second.service_id, second.report_count) == (registered.id, 2)
    assert second.store_time >= first.store_time > 1.7e9
    assert await store.mark_left(KEY) is True
    assert await store.mark_left(ServiceKey("h1", "absent")) is False
    assert await store.delete(ServiceKey("h1", "absent")) is False
    with pytest.raises(NotFound, match=r"^no service host='h1' binary='absent'$"):
        await store.set_disabled(ServiceKey("h1", "absent"), True, None)
    with pytest.raises(NotFound, match=r"^no service host='h1' binary='absent'$"):
        await store.set_forced_down(ServiceKey("h1", "absent"), True)
    assert await store.delete(KEY) is True
    assert await store.get(KEY) is None
    assert repr(store).startswith("SQLiteStore(")


async def test_list_filters_each_column(store: SQLStore) -> None:
    for host, binary, topic in [("h1", "b1", "t1"), ("h1", "b2", "t2"), ("h2", "b1", "t2")]:
        await store.register(Member(host, binary, topic, 0))

    async def keys(**filters: str) -> list[tuple[str, str]]:
        return [(s.host, s.binary) for s in await store.list(**filters)]

    assert await keys(topic="t2") == [("h1", "b2"), ("h2", "b1")]
    assert await keys(binary="b1") == [("h1", "b1"), ("h2", "b1")]
    assert await keys(host="h1") == [("h1", "b1"), ("h1", "b2")]
    assert await keys(host="h2", topic="t2", binary="b1") == [("h2", "b1")]
    assert await keys(host="h2", topic="t1") == []


def test_timestamps_are_utc() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    stamp = to_datetime(1_700_000_000.5)
    assert stamp == datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)
    assert stamp.tzinfo is UTC
    east = datetime(2023, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert to_datetime(east).tzinfo is UTC
    assert to_datetime(east) == east
    assert to_datetime(None) is None
    with pytest.raises(TypeError, match="unexpected timestamp 'x'"):
        to_datetime("x")
