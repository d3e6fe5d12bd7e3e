"""sg-api shows why a service's local check holds it down."""

from __future__ import annotations

import httpx

from sg import ServiceGroup
from sg.model import ServiceKey
from tests.support.api import AUTH, beat, uuid_of


async def test_api_shows_check_failure(client: httpx.AsyncClient, api_group: ServiceGroup) -> None:
    await beat(api_group, "c1")
    uuid = await uuid_of(api_group, "c1")
    r = await client.get(f"/v1/services/{uuid}", headers=AUTH)
    assert r.json()["service"]["check_failure"] is None
    assert await api_group.store.set_check_failure(
        ServiceKey("c1", "nova-compute"), "tcp:127.0.0.1:1: refused"
    )
    r = await client.get(f"/v1/services/{uuid}", headers=AUTH)
    service = r.json()["service"]
    assert (service["state"], service["reason"]) == ("down", "check_failed")
    assert service["check_failure"] == "tcp:127.0.0.1:1: refused"
    listed = (await client.get("/v1/services", params={"state": "down"}, headers=AUTH)).json()["services"]
    assert [s["check_failure"] for s in listed] == ["tcp:127.0.0.1:1: refused"]
