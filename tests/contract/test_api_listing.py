"""GET /v1/services: the streamed, orjson-encoded listing says what service_json says,
and its weak ETag answers pollers with 304 until something but age or updated_at moves."""

from __future__ import annotations

import json

import httpx
import pytest

from sg import Member, ServiceGroup, Settings
from sg.api.app import create_app
from sg.api.handlers import service_json
from sg.api.listing import CHUNK_ROWS, stream_rows
from sg.model import ServiceKey
from tests.support.api import AUTH, api_settings, beat, client_for


async def _both(group: ServiceGroup) -> tuple[dict[str, list[dict[str, object]]], object]:
    """One listing, streamed and as before streaming (the stdlib's encoding of service_json)."""
    statuses = await group.list()
    streamed = json.loads(b"".join([chunk async for chunk in stream_rows(statuses)]))
    expected = json.loads(json.dumps({"services": [service_json(s) for s in statuses]}))
    return streamed, expected


async def test_streamed_listing_equals_service_json_on_every_backend(group: ServiceGroup) -> None:
    # Every row kind: up, disabled with a reason, forced down, held down by a check,
    # never reported, and a name that JSON must escape.
    for host in ("up-1", "dis-1", "fd-1", "chk-1", 'quote"é\\-1'):
        await beat(group, host)
    await group.store.register(Member("never-1", "nova-compute", "compute"))
    await group.set_disabled(ServiceKey("dis-1", "nova-compute"), True, "maintenance é")
    await group.set_forced_down(ServiceKey("fd-1", "nova-compute"), True)
    await group.store.set_check_failure(ServiceKey("chk-1", "nova-compute"), "pidfile: gone")
    streamed, expected = await _both(group)
    assert streamed == expected
    assert {s["reason"] for s in streamed["services"]} >= {"ok", "forced_down", "check_failed"}


@pytest.mark.parametrize("count", [0, 1, CHUNK_ROWS, CHUNK_ROWS + 1])
async def test_streamed_listing_across_chunk_boundaries(mem_group: ServiceGroup, count: int) -> None:
    for i in range(count):
        await mem_group.store.register(Member(f"h{i:04d}", "nova-compute", "compute"))
    streamed, expected = await _both(mem_group)
    assert streamed == expected
    assert len(streamed["services"]) == count


async def test_list_answers_with_a_weak_etag_and_304(mem_group: ServiceGroup) -> None:
    async with client_for(create_app(Settings(), api_settings(), group=mem_group)) as client:
        await beat(mem_group, "c1")
        first = await client.get("/v1/services", headers=AUTH)
        assert first.status_code == 200
        etag = first.headers["etag"]
        assert etag.startswith('W/"')
        assert first.headers["content-type"] == "application/json"

        # Only age and updated_at moved: the poller's copy still holds.
        await beat(mem_group, "c1")
        for sent in (etag, etag.removeprefix("W/"), f'W/"other", {etag}', "*"):
            again = await client.get("/v1/services", headers={**AUTH, "If-None-Match": sent})
            assert again.status_code == 304, sent
            assert again.content == b""
            assert again.headers["etag"] == etag

        stale = await client.get("/v1/services", headers={**AUTH, "If-None-Match": 'W/"other"'})
        assert stale.status_code == 200
        assert stale.json()["services"][0]["host"] == "c1"

        # A change a poller cares about gives a new ETag, and the full answer.
        await mem_group.set_disabled(ServiceKey("c1", "nova-compute"), True)
        changed = await client.get("/v1/services", headers={**AUTH, "If-None-Match": etag})
        assert changed.status_code == 200
        assert changed.headers["etag"] != etag
        assert changed.json()["services"][0]["status"] == "disabled"

        # A filter is part of the answer: another filter, another ETag.
        filtered = await client.get("/v1/services?state=down", headers={**AUTH, "If-None-Match": etag})
        assert filtered.status_code == 200
        assert filtered.json() == {"services": []}


async def test_etag_needs_a_token_like_the_listing(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/services", headers={"If-None-Match": "*"})
    assert r.status_code == 401
