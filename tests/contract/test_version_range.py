"""The version range is the model's, and every store holds all of it (issue 10, defect 3)."""

from __future__ import annotations

import pytest

from sg import Member, ServiceGroup
from sg.errors import InvalidName
from sg.model import MAX_VERSION, ServiceKey


async def holds_the_whole_range(url: str) -> None:
    async with ServiceGroup.from_urls(url, "db://") as group:
        for host, version in (("lo", 0), ("hi", MAX_VERSION)):
            await group.store.register(Member(host, "sg-v", "t", version))
            assert await group.store.beat(ServiceKey(host, "sg-v")) is not None
            record = await group.store.get(ServiceKey(host, "sg-v"))
            assert record is not None
            assert record.version == version
        assert await group.min_version("sg-v") == 0
        await group.store.delete(ServiceKey("lo", "sg-v"))
        assert await group.min_version("sg-v") == MAX_VERSION


async def test_every_sql_store_holds_the_whole_version_range(store_url: str) -> None:
    await holds_the_whole_range(store_url)


async def test_the_memory_store_holds_the_whole_version_range() -> None:
    await holds_the_whole_range("memory://versions3")


@pytest.mark.parametrize("version", [MAX_VERSION + 1, 2**63, -1])
def test_versions_outside_the_range_are_refused_by_the_model(version: int) -> None:
    assert MAX_VERSION == 2**31 - 1  # PostgreSQL's integer column
    with pytest.raises(InvalidName, match="version"):
        Member("h", "b", "t", version)
