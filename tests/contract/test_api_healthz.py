"""/healthz asks every memcached server (issue 10, defect 10)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sg import ServiceGroup, Settings
from sg.api.app import create_app
from sg.testing.memcached import MemcachedServer
from sg.testing.plugin import memcached_url
from tests.support.api import AUTH, TIMINGS, api_settings, beat, client_for


async def test_healthz_fails_when_one_of_two_memcached_servers_is_down(
    tmp_path: Path, sg_memcached_factory: Callable[..., list[MemcachedServer]]
) -> None:
    servers = sg_memcached_factory(2)
    url = memcached_url(servers)
    store = f"sqlite://{tmp_path}/s.db"
    async with ServiceGroup.from_urls(store, url, driver_timeout=1.0, **TIMINGS) as group:
        for i in range(20):
            await beat(group, f"c{i}")
        async with client_for(create_app(Settings(), api_settings(), group=group)) as client:
            r = await client.get("/healthz", headers=AUTH)
            assert r.status_code == 200, r.text
            servers[1].stop()
            r = await client.get("/healthz", headers=AUTH)
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["driver"]["ok"] is False
            assert servers[1].address in body["driver"]["error"]
            assert body["store"]["ok"] is True
            # What /healthz reports matches the listing: some services are unknown.
            listing = await group.list()
            assert any(s.verdict.state == "unknown" for s in listing)
