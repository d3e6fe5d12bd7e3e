"""sg-api applies the model's free-text rule to ``disabled_reason`` (issue 10, defect 12)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from sg import ServiceGroup, Settings
from sg.api.app import create_app
from tests.support.api import AUTH, TIMINGS, api_settings, beat, client_for, uuid_of


@pytest.fixture
async def sql_group(store_url: str) -> AsyncIterator[ServiceGroup]:
    """A group on each SQL store (a lone surrogate failed in the store's encoder)."""
    async with ServiceGroup.from_urls(store_url, "db://", **TIMINGS) as group:
        yield group


@pytest.fixture
async def sql_client(sql_group: ServiceGroup) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_app(Settings(), api_settings(), group=sql_group)) as c:
        yield c


@pytest.mark.parametrize(
    "raw_reason",
    [
        '"\\ud800"',  # a lone surrogate: 500 before, the store could not encode it
        '"\\u001b[2J"',  # ESC: would reach every terminal that shows the service
        '"a\\nb"',
        '"' + "x" * 256 + '"',
    ],
)
async def test_bad_disabled_reason_is_a_400_naming_the_field(
    sql_client: httpx.AsyncClient, sql_group: ServiceGroup, raw_reason: str
) -> None:
    mem_client, mem_group = sql_client, sql_group
    await beat(mem_group, "c1")
    uuid = await uuid_of(mem_group, "c1")
    body = '{"status": "disabled", "disabled_reason": ' + raw_reason + "}"
    r = await mem_client.put(
        f"/v1/services/{uuid}", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == "disabled_reason"
    status = await mem_group.get("c1", "nova-compute")
    assert not status.service.disabled


async def test_printable_unicode_reason_is_kept(
    mem_client: httpx.AsyncClient, mem_group: ServiceGroup
) -> None:
    await beat(mem_group, "c1")
    uuid = await uuid_of(mem_group, "c1")
    r = await mem_client.put(
        f"/v1/services/{uuid}", json={"status": "disabled", "disabled_reason": "mise à jour 🚀"}, headers=AUTH
    )
    assert r.status_code == 200, r.text
    assert r.json()["service"]["disabled_reason"] == "mise à jour 🚀"
