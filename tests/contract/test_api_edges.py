"""sg-api at its edges: a body over 64 KiB, an unreachable driver (unknown services,
409 on delete, 503 health), and the closed ``route`` label of the metrics."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import httpx
from prometheus_client.parser import text_string_to_metric_families

from sg import ServiceGroup, Settings
from sg.api.app import create_app
from sg.api.handlers import MAX_BODY
from sg.backends import Backends
from sg.drivers.base import Membership
from sg.drivers.memory import MemoryDriver
from sg.errors import BackendUnavailable
from sg.model import Member, Service
from sg.store.memory import MemoryStore
from sg.timings import Timings
from tests.support.api import AUTH, TIMINGS, api_settings, beat, client_for, uuid_of

_names = itertools.count()


class _UnreachableDriver(MemoryDriver):
    """The memory driver, once ``down`` is set: every call fails as an unreachable server's."""

    down = False

    def _check(self) -> None:
        if self.down:
            raise BackendUnavailable("memory", "connection refused")

    async def ping(self) -> None:
        self._check()
        await super().ping()

    async def members(self, services: Sequence[Service | Member]) -> Membership:
        self._check()
        return await super().members(services)


async def test_a_body_over_64_kib_is_413(mem_client: httpx.AsyncClient, mem_group: ServiceGroup) -> None:
    await beat(mem_group, "c1")
    uuid = await uuid_of(mem_group, "c1")
    big = b'{"disabled_reason": "' + b"x" * MAX_BODY + b'"}'
    r = await mem_client.put(f"/v1/services/{uuid}", content=big, headers=AUTH)
    assert r.status_code == 413
    assert r.json()["error"]["field"] == "body"
    assert str(MAX_BODY) in r.json()["error"]["message"]
    assert not (await mem_group.get("c1", "nova-compute")).service.disabled
    # At the limit it is read (and refused for what it says, not for its size).
    at_limit = b'{"status": "disabled", "disabled_reason": "' + b"y" * (MAX_BODY - 64) + b'"}'
    assert len(at_limit) <= MAX_BODY
    r = await mem_client.put(f"/v1/services/{uuid}", content=at_limit, headers=AUTH)
    assert r.status_code != 413


async def test_an_unreachable_driver_is_unknown_409_and_503() -> None:
    name = f"edge{next(_names)}"
    driver = _UnreachableDriver(name)
    async with (
        ServiceGroup(Backends(MemoryStore(name), driver, Timings(**TIMINGS))) as group,
        client_for(create_app(Settings(), api_settings(), group=group)) as client,
    ):
        await beat(group, "c1")
        uuid = await uuid_of(group, "c1")
        assert (await client.get("/healthz")).status_code == 200
        driver.down = True
        r = await client.get(f"/v1/services/{uuid}", headers=AUTH)
        assert r.status_code == 200
        service = r.json()["service"]
        assert (service["state"], service["reason"]) == ("unknown", "driver_unreachable")
        # An unknown service may still be alive: refused without force, as an up one is.
        r = await client.delete(f"/v1/services/{uuid}", headers=AUTH)
        assert r.status_code == 409
        assert "unknown" in r.json()["error"]["message"]
        assert await group.store.get(service_key := (await group.get("c1", "nova-compute")).service.key)
        r = await client.get(
            "/v1/services/min-version", params={"binary": "nova-compute", "only_up": "true"}, headers=AUTH
        )
        assert r.status_code == 503
        r = await client.get("/healthz")
        assert r.status_code == 503
        body = r.json()
        assert (body["status"], body["store"]["ok"], body["driver"]["ok"]) == ("unavailable", True, False)
        r = await client.delete(f"/v1/services/{uuid}", params={"force": "true"}, headers=AUTH)
        assert r.status_code == 204
        assert await group.store.get(service_key) is None


async def test_requests_outside_the_route_table_count_as_route_other(mem_client: httpx.AsyncClient) -> None:
    assert (await mem_client.get("/nowhere/at/all", headers=AUTH)).status_code == 404
    assert (await mem_client.request("BREW", "/v1/services", headers=AUTH)).status_code == 405
    r = await mem_client.get("/metrics", headers=AUTH)
    labels = [
        s.labels
        for f in text_string_to_metric_families(r.text)
        for s in f.samples
        if s.name == "sg_api_requests_total"
    ]
    assert {"route": "other", "method": "GET", "status": "404"} in labels
    # No route matched that method either: both labels are closed.
    assert {"route": "other", "method": "other", "status": "405"} in labels
    assert not any("nowhere" in label["route"] for label in labels)
