"""The PostgreSQL store's pool options reach asyncpg's pool on a live server."""

from __future__ import annotations

from sg.store.postgresql import PostgresStore
from sg.timings import Timings


async def test_pool_options_reach_the_pool(sg_postgres_url: str) -> None:
    store = PostgresStore.from_url(f"{sg_postgres_url}?pool_min=2&pool_max=3&timeout=1.5", Timings())
    await store.open()
    try:
        pool = store.connector._pool
        assert pool is not None
        assert (pool.get_min_size(), pool.get_max_size()) == (2, 3)
        # pool_min connections are opened with the pool, before any load.
        assert pool.get_size() == 2
        assert store.timeout == 1.5
        assert await store.list() == []
    finally:
        await store.close()
