"""sg-api through httpx's ASGI transport, on real stores and drivers.

The app is given an open ServiceGroup; services are made alive by real heartbeat
beats on the same group, so the API sees what an operator would.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sg import Member, ServiceGroup, Settings
from sg.api.app import create_app
from sg.api.routes import ROUTES
from sg.api.settings import ApiSettings
from sg.backends import Backends
from sg.drivers.memory import MemoryDriver
from sg.errors import BackendUnavailable
from sg.model import Service
from sg.store.base import Survey, SurveyQuery
from sg.store.memory import MemoryStore
from sg.testing.servers import free_port
from sg.timings import Timings
from tests.support.api import (
    AUTH,
    OTHER_TOKEN,
    TIMINGS,
    TOKEN,
    api_settings,
    beat,
    client_for,
    settings,
    uuid_of,
)
from tests.support.backends import DRIVERS

_names = itertools.count()


# -- listing and reading ---------------------------------------------------------------


async def test_list_shows_nova_like_fields(client: httpx.AsyncClient, api_group: ServiceGroup) -> None:
    await beat(api_group, "c1")
    r = await client.get("/v1/services", headers=AUTH)
    assert r.status_code == 200
    (svc,) = r.json()["services"]
    assert set(svc) >= {
        "id", "uuid", "host", "binary", "topic", "status", "state", "reason", "age",
        "updated_at", "disabled_reason", "forced_down", "version",
    }  # fmt: skip
    assert (svc["host"], svc["binary"], svc["topic"]) == ("c1", "nova-compute", "compute")
    assert (svc["status"], svc["state"], svc["reason"]) == ("enabled", "up", "ok")
    assert svc["forced_down"] is False
    assert svc["updated_at"] is not None
    assert 0 <= svc["age"] < TIMINGS["service_down_time"]


async def test_list_filters(client: httpx.AsyncClient, api_group: ServiceGroup) -> None:
    await beat(api_group, "c1")
    await beat(api_group, "c2")
    await beat(api_group, "s1", binary="nova-scheduler", topic="scheduler")
    await api_group.store.register(Member("c3", "nova-compute", "compute", 0))  # never reported: down

    async def hosts(**params: str) -> list[str]:
        r = await client.get("/v1/services", params=params, headers=AUTH)
        assert r.status_code == 200, r.text
        return sorted(s["host"] for s in r.json()["services"])

    assert await hosts() == ["c1", "c2", "c3", "s1"]
    assert await hosts(topic="scheduler") == ["s1"]
    assert await hosts(binary="nova-compute") == ["c1", "c2", "c3"]
    assert await hosts(host="c2") == ["c2"]
    assert await hosts(state="down") == ["c3"]
    assert await hosts(state="up", topic="compute") == ["c1", "c2"]
    assert await hosts(state="unknown") == []


async def test_get_one(client: httpx.AsyncClient, api_group: ServiceGroup) -> None:
    await beat(api_group, "c1")
    uuid = await uuid_of(api_group, "c1")
    r = await client.get(f"/v1/services/{uuid}", headers=AUTH)
    assert r.status_code == 200
    assert r.json()["service"]["uuid"] == uuid
    assert r.json()["service"]["state"] == "up"
    # The same UUID in capitals is the same service.
    r = await client.get(f"/v1/services/{uuid.upper()}", headers=AUTH)
    assert r.json()["service"]["uuid"] == uuid


async def test_min_version(client: httpx.AsyncClient, api_group: ServiceGroup) -> None:
    for host, version in (("c1", 5), ("c2", 7)):
        assert await api_group.heartbeat(
            Member(host=host, binary="nova-compute", topic="compute", version=version)
        ).beat_once()
    await api_group.store.register(Member("old", "nova-compute", "compute", 3))  # down
    r = await client.get("/v1/services/min-version", params={"binary": "nova-compute"}, headers=AUTH)
    assert r.status_code == 200
    assert r.json() == {"binary": "nova-compute", "only_up": False, "min_version": 3}
    r = await client.get(
        "/v1/services/min-version", params={"binary": "nova-compute", "only_up": "true"}, headers=AUTH
    )
    assert r.json()["min_version"] == 5
    r = await client.get("/v1/services/min-version", params={"binary": "nothing"}, headers=AUTH)
    assert r.json()["min_version"] is None


# -- changing -------------------------------------------------------------------------


async def test_put_disable_enable_force_down_keeps_updated_at(
    client: httpx.AsyncClient, api_group: ServiceGroup
) -> None:
    await beat(api_group, "c1")
    uuid = await uuid_of(api_group, "c1")
    before = (await client.get(f"/v1/services/{uuid}", headers=AUTH)).json()["service"]

    r = await client.put(
        f"/v1/services/{uuid}", json={"status": "disabled", "disabled_reason": "maintenance"}, headers=AUTH
    )
    assert r.status_code == 200, r.text
    svc = r.json()["service"]
    assert (svc["status"], svc["disabled_reason"], svc["state"]) == ("disabled", "maintenance", "up")

    r = await client.put(f"/v1/services/{uuid}", json={"forced_down": True}, headers=AUTH)
    svc = r.json()["service"]
    assert (svc["forced_down"], svc["state"], svc["reason"]) == (True, "down", "forced_down")

    r = await client.put(
        f"/v1/services/{uuid}", json={"status": "enabled", "forced_down": False}, headers=AUTH
    )
    svc = r.json()["service"]
    assert (svc["status"], svc["disabled_reason"], svc["forced_down"], svc["state"]) == (
        "enabled",
        None,
        False,
        "up",
    )
    assert svc["updated_at"] == before["updated_at"]
    stored = await api_group.get("c1", "nova-compute")
    assert stored.service.updated_at is not None
    assert stored.service.updated_at.isoformat() == before["updated_at"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"status": "maybe"}, "status"),
        ({"status": True}, "status"),
        ({"forced_down": "yes"}, "forced_down"),
        ({"disabled_reason": "why"}, "disabled_reason"),
        ({"status": "disabled", "disabled_reason": 5}, "disabled_reason"),
        ({"status": "disabled", "disabled_reason": "x" * 256}, "disabled_reason"),
        ({"updated_at": "2020-01-01T00:00:00Z"}, "updated_at"),
        ([1, 2], "body"),
    ],
)
async def test_put_bad_input_is_400_naming_the_field(
    mem_client: httpx.AsyncClient, mem_group: ServiceGroup, body: Any, field: str
) -> None:
    await beat(mem_group, "c1")
    uuid = await uuid_of(mem_group, "c1")
    r = await mem_client.put(f"/v1/services/{uuid}", json=body, headers=AUTH)
    assert r.status_code == 400
    assert r.json()["error"]["field"] == field
    assert field in r.json()["error"]["message"]
    svc = (await mem_group.get("c1", "nova-compute")).service
    assert (svc.disabled, svc.forced_down) == (False, False)


async def test_put_not_json_is_400(mem_client: httpx.AsyncClient, mem_group: ServiceGroup) -> None:
    await beat(mem_group, "c1")
    uuid = await uuid_of(mem_group, "c1")
    r = await mem_client.put(f"/v1/services/{uuid}", content=b"{not json", headers=AUTH)
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "body"


@pytest.fixture(params=sorted([*DRIVERS, "memory"]))
def any_driver_url(request: pytest.FixtureRequest) -> str:
    """Each driver of the contract suite, plus the memory driver (server fixtures are
    resolved here, synchronously, as tests.support.backends expects)."""
    if request.param == "memory":
        return f"memory://api{next(_names)}"
    return DRIVERS[request.param](request)


@pytest.fixture
async def any_driver_group(any_driver_url: str, tmp_path: Any) -> AsyncIterator[ServiceGroup]:
    """A SQLite store with each driver."""
    async with ServiceGroup.from_urls(f"sqlite://{tmp_path}/api.db", any_driver_url, **TIMINGS) as group:
        yield group


async def test_delete_removes_record_and_driver_member(any_driver_group: ServiceGroup) -> None:
    group = any_driver_group
    async with client_for(create_app(Settings(), api_settings(), group=group)) as client:
        # A live service: refused without force, and nothing changes.
        await beat(group, "live")
        live_uuid = await uuid_of(group, "live")
        live = (await group.get("live", "nova-compute")).service
        r = await client.delete(f"/v1/services/{live_uuid}", headers=AUTH)
        assert r.status_code == 409
        assert "is up" in r.json()["error"]["message"]
        assert "force" in r.json()["error"]["message"]
        assert await group.store.get(live.key) is not None
        assert (await group.driver.members([live]))[live.key] is True

        r = await client.delete(f"/v1/services/{live_uuid}", params={"force": "true"}, headers=AUTH)
        assert r.status_code == 204
        assert await group.store.get(live.key) is None
        assert (await client.get(f"/v1/services/{live_uuid}", headers=AUTH)).status_code == 404
        if group.driver.name != "db":  # db has no second signal: its "member" is the record
            # Not held (memcached may say "recovering" within its server's first second).
            assert (await group.driver.members([live]))[live.key] is not True

        # A service that is down but still a driver member (its record went stale or
        # never reported): DELETE needs no force and must still call leave.
        record = await group.store.register(Member("down", "nova-compute", "compute", 0))
        await group.driver.join(record.member)
        r = await client.get(f"/v1/services/{record.uuid}", headers=AUTH)
        assert r.json()["service"]["state"] == "down"
        r = await client.delete(f"/v1/services/{record.uuid}", headers=AUTH)
        assert r.status_code == 204
        assert await group.store.get(record.key) is None
        if isinstance(group.driver, MemoryDriver):
            assert record.key not in group.driver._members
        if group.driver.name != "db":
            assert (await group.driver.members([record]))[record.key] is False

        r = await client.delete(f"/v1/services/{record.uuid}", headers=AUTH)
        assert r.status_code == 404


async def test_delete_after_leave_needs_no_force(client: httpx.AsyncClient, api_group: ServiceGroup) -> None:
    hb = api_group.heartbeat(Member(host="c1", binary="nova-compute", topic="compute"))
    assert await hb.beat_once()
    await hb.leave()
    uuid = await uuid_of(api_group, "c1")
    r = await client.get(f"/v1/services/{uuid}", headers=AUTH)
    assert (r.json()["service"]["state"], r.json()["service"]["reason"]) == ("down", "left")
    assert (await client.delete(f"/v1/services/{uuid}", headers=AUTH)).status_code == 204
    assert (await client.get("/v1/services", headers=AUTH)).json()["services"] == []


# -- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "params", "field"),
    [
        ("GET", "/v1/services", {"state": "sideways"}, "state"),
        ("GET", "/v1/services", {"host": ""}, "host"),
        ("GET", "/v1/services", {"topic": "a\x00b"}, "topic"),
        ("GET", "/v1/services", {"hots": "c1"}, "hots"),
        ("GET", "/v1/services/not-a-uuid", {}, "uuid"),
        ("GET", "/v1/services/min-version", {}, "binary"),
        ("GET", "/v1/services/min-version", {"binary": "b", "only_up": "perhaps"}, "only_up"),
        ("DELETE", "/v1/services/00000000-0000-4000-8000-000000000000", {"force": "maybe"}, "force"),
        ("DELETE", "/v1/services/xyz", {}, "uuid"),
    ],
)
async def test_bad_input_is_400_naming_the_field(
    mem_client: httpx.AsyncClient, method: str, path: str, params: dict[str, str], field: str
) -> None:
    r = await mem_client.request(method, path, params=params, headers=AUTH)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field
    assert r.json()["error"]["code"] == 400


async def test_repeated_query_parameter_is_400(mem_client: httpx.AsyncClient) -> None:
    r = await mem_client.get("/v1/services?host=a&host=b", headers=AUTH)
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "host"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_unknown_uuid_is_404(client: httpx.AsyncClient, method: str) -> None:
    kwargs: dict[str, Any] = {"json": {"forced_down": True}} if method == "PUT" else {}
    r = await client.request(
        method, "/v1/services/00000000-0000-4000-8000-000000000000", headers=AUTH, **kwargs
    )
    assert r.status_code == 404
    assert "no service" in r.json()["error"]["message"]


async def test_unknown_route_and_method_are_json(mem_client: httpx.AsyncClient) -> None:
    r = await mem_client.get("/v2/nothing", headers=AUTH)
    assert (r.status_code, r.json()["error"]["code"]) == (404, 404)
    r = await mem_client.post("/v1/services", headers=AUTH)
    assert r.status_code == 405
    assert r.json()["error"]["code"] == 405
    assert "GET" in r.headers["allow"]


async def test_unreachable_store_is_503_and_health_says_so() -> None:
    port = free_port()  # nothing listens there
    async with (
        ServiceGroup.from_urls(
            f"postgresql://sg@127.0.0.1:{port}/sg", "db://", store_timeout=1.0, **TIMINGS
        ) as group,
        client_for(create_app(Settings(), api_settings(), group=group)) as client,
    ):
        r = await client.get("/v1/services", headers=AUTH)
        assert r.status_code == 503
        assert "postgresql" in r.json()["error"]["message"]
        r = await client.get("/v1/services/min-version", params={"binary": "b"}, headers=AUTH)
        assert r.status_code == 503
        r = await client.delete("/v1/services/00000000-0000-4000-8000-000000000000", headers=AUTH)
        assert r.status_code == 503
        r = await client.get("/healthz")
        assert r.status_code == 503
        body = r.json()
        assert (body["status"], body["store"]["ok"], body["driver"]["ok"]) == ("unavailable", False, True)
        assert str(port) not in body["store"]["error"]  # no details without a token
        detailed = (await client.get("/healthz", headers=AUTH)).json()
        assert str(port) in detailed["store"]["error"]
        r = await client.get("/metrics", headers=AUTH)
        assert r.status_code == 200
        samples = {s.name: s.value for f in text_string_to_metric_families(r.text) for s in f.samples}
        assert samples["sg_api_listing_success"] == 0.0


class _BrokenStore(MemoryStore):
    """A store with a bug: a read raises something that is not a backend error."""

    async def survey(self, query: SurveyQuery) -> Survey:
        raise RuntimeError("secret internal detail")


async def test_a_bug_is_a_json_500_without_the_traceback() -> None:
    group = ServiceGroup(
        Backends(_BrokenStore(f"broken{next(_names)}"), MemoryDriver(f"broken{next(_names)}"), Timings())
    )
    async with group, client_for(create_app(Settings(), api_settings(), group=group)) as client:
        r = await client.get("/v1/services", headers=AUTH)
        assert r.status_code == 500
        assert r.json()["error"]["code"] == 500
        assert "secret internal detail" not in r.text
        assert "Traceback" not in r.text


class _StuckDriver(MemoryDriver):
    """The memory driver, whose leave() fails as an unreachable backend does."""

    async def leave(self, service: Any) -> None:
        raise BackendUnavailable("memory", "connection refused")


async def test_delete_whose_driver_cannot_leave_is_503_and_deletes_nothing() -> None:
    name = f"stuck{next(_names)}"
    async with ServiceGroup(Backends(MemoryStore(name), _StuckDriver(name), Timings(**TIMINGS))) as group:
        record = await group.store.register(
            Member("down", "nova-compute", "compute", 0)
        )  # down: no force needed
        async with client_for(create_app(Settings(), api_settings(), group=group)) as client:
            r = await client.delete(f"/v1/services/{record.uuid}", headers=AUTH)
            assert r.status_code == 503, r.text
            assert "nothing was deleted" in r.json()["error"]["message"]
            assert await group.store.get(record.key) is not None
            r = await client.delete(f"/v1/services/{record.uuid}", params={"force": "true"}, headers=AUTH)
            assert r.status_code == 204
            assert await group.store.get(record.key) is None


# -- auth -----------------------------------------------------------------------------

MUTATIONS = [
    ("PUT", {"json": {"status": "disabled"}}, {}),
    ("DELETE", {}, {}),
    ("DELETE", {}, {"force": "true"}),
]


@pytest.mark.parametrize(("method", "kwargs", "params"), MUTATIONS)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": f"Bearer {OTHER_TOKEN}"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],
    ids=["none", "wrong", "not-bearer", "empty", "prefix"],
)
@pytest.mark.parametrize("open_reads", [False, True])
async def test_mutations_need_a_valid_token(
    mem_group: ServiceGroup,
    method: str,
    kwargs: dict[str, Any],
    params: dict[str, str],
    headers: dict[str, str],
    open_reads: bool,
) -> None:
    await beat(mem_group, "c1")
    uuid = await uuid_of(mem_group, "c1")
    async with client_for(
        create_app(Settings(), api_settings(open_reads=open_reads), group=mem_group)
    ) as mem_client:
        r = await mem_client.request(method, f"/v1/services/{uuid}", params=params, headers=headers, **kwargs)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert TOKEN not in r.text
    svc = (await mem_group.get("c1", "nova-compute")).service
    assert svc.disabled is False  # nothing changed


async def test_reads_need_a_token_unless_open(api_group: ServiceGroup) -> None:
    await beat(api_group, "c1")
    uuid = await uuid_of(api_group, "c1")
    reads = ["/v1/services", f"/v1/services/{uuid}", "/v1/services/min-version?binary=b", "/metrics"]
    async with client_for(create_app(Settings(), api_settings(), group=api_group)) as closed:
        for path in reads:
            assert (await closed.get(path)).status_code == 401, path
            bad = {"Authorization": f"Bearer {OTHER_TOKEN}"}
            assert (await closed.get(path, headers=bad)).status_code == 401, path
            assert (await closed.get(path, headers=AUTH)).status_code == 200, path
        # Health and the API description are always open.
        assert (await closed.get("/healthz")).status_code == 200
        assert (await closed.get("/openapi.json")).status_code == 200
    async with client_for(create_app(Settings(), api_settings(open_reads=True), group=api_group)) as opened:
        for path in reads:
            assert (await opened.get(path)).status_code == 200, path


async def test_no_tokens_configured_refuses_every_change(api_group: ServiceGroup) -> None:
    await beat(api_group, "c1")
    uuid = await uuid_of(api_group, "c1")
    app = create_app(Settings(), ApiSettings(open_reads=True), group=api_group)
    async with client_for(app) as client:
        assert (await client.get("/v1/services")).status_code == 200
        r = await client.put(f"/v1/services/{uuid}", json={"forced_down": True}, headers=AUTH)
        assert r.status_code == 401


async def test_any_of_several_tokens_is_accepted(api_group: ServiceGroup) -> None:
    app = create_app(Settings(), api_settings(tokens=(TOKEN, OTHER_TOKEN)), group=api_group)
    async with client_for(app) as client:
        for token in (TOKEN, OTHER_TOKEN):
            r = await client.get("/v1/services", headers={"Authorization": f"bearer {token}"})
            assert r.status_code == 200


# -- health, metrics, openapi ------------------------------------------------------------


async def test_healthz_ok(client: httpx.AsyncClient, api_group: ServiceGroup) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["store"] == {"backend": api_group.store.name, "ok": True, "error": None}
    assert r.json()["driver"] == {"backend": api_group.driver.name, "ok": True, "error": None}


async def test_metrics_parse_and_carry_service_up(client: httpx.AsyncClient, api_group: ServiceGroup) -> None:
    await beat(api_group, "c1")
    await beat(api_group, "s1", binary="nova-scheduler", topic="scheduler")
    await api_group.store.register(Member("c2", "nova-compute", "compute", 0))  # down
    await client.get("/v1/services", headers=AUTH)
    await client.get("/v1/services/00000000-0000-4000-8000-000000000000", headers=AUTH)
    r = await client.get("/metrics", headers=AUTH)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    up = {
        (s.labels["topic"], s.labels["binary"], s.labels["host"]): s.value
        for s in families["sg_service_up"].samples
    }
    assert up == {
        ("compute", "nova-compute", "c1"): 1.0,
        ("compute", "nova-compute", "c2"): 0.0,
        ("scheduler", "nova-scheduler", "s1"): 1.0,
    }
    requests = {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for s in families["sg_api_requests"].samples
        if s.name == "sg_api_requests_total"
    }
    assert requests[("/v1/services", "GET", "200")] == 1.0
    assert requests[("/v1/services/{uuid}", "GET", "404")] == 1.0
    counts = {
        s.labels["route"]: s.value
        for s in families["sg_api_request_duration_seconds"].samples
        if s.name == "sg_api_request_duration_seconds_count"
    }
    assert counts["/v1/services"] == 1.0


async def test_openapi_names_every_route(mem_client: httpx.AsyncClient) -> None:
    doc = (await mem_client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {
        "/v1/services",
        "/v1/services/min-version",
        "/v1/services/prune",
        "/v1/services/{uuid}",
        "/v1/services/{uuid}/actions",
        "/v1/events",
        "/",
        "/static/{name}",
        "/healthz",
        "/metrics",
    }
    assert set(doc["paths"]["/v1/services/{uuid}"]) == {"parameters", "get", "put", "delete"}


async def test_route_table_and_openapi_name_the_same_routes(mem_client: httpx.AsyncClient) -> None:
    """Every route of the table is in /openapi.json with its methods, and nothing else is;
    the one route left out is the document itself."""
    doc = (await mem_client.get("/openapi.json")).json()
    documented = {
        (path, method.upper())
        for path, item in doc["paths"].items()
        for method in item
        if method != "parameters"
    }
    table = {(route.path, method) for route in ROUTES if route.documented for method in route.methods}
    assert documented == table
    # Left out: the document itself, and Nova's os-services (their schema is Nova's).
    assert [route.path for route in ROUTES if not route.documented] == [
        "/v2.1",
        "/v2.1/",
        "/v2.1/os-services",
        "/v2.1/os-services/{service_id}",
        "/v2.1/os-services/{service_id}",
        "/openapi.json",
    ]
    streams = {route.path for route in ROUTES if not route.timed}
    assert streams == {"/v1/events"}
    # Each documented operation answers on the router (not a 404 or 405); a stream
    # never ends, so it is asked with a wrong query, which it refuses before streaming.
    for path, method in table:
        concrete = path.replace("{uuid}", "00000000-0000-4000-8000-000000000000")
        concrete = concrete.replace("{name}", "app.js") + ("?nope=1" if path in streams else "")
        r = await mem_client.request(method, concrete, headers=AUTH)
        assert r.status_code not in (404, 405) or r.json()["error"]["message"].startswith("no service"), (
            method,
            path,
            r.status_code,
        )


async def test_settings_repr_never_shows_tokens() -> None:
    library, api = settings()
    s = replace(library, store="sqlite:///x.db")
    assert TOKEN not in repr(s)
    assert TOKEN not in repr(api)
    assert TOKEN not in str(api)


class _CountingStore(MemoryStore):
    """The memory store, counting the calls a request makes."""

    calls: list[str]

    async def survey(self, query: SurveyQuery) -> Survey:
        self.calls.append("survey")
        return await super().survey(query)

    async def get(self, key: Any) -> Service | None:
        self.calls.append("get")
        return await super().get(key)


class _CountingDriver(MemoryDriver):
    calls: list[str]

    async def members(self, services: Any) -> Any:
        self.calls.append("members")
        return await super().members(services)


async def test_a_listing_is_one_store_query_and_one_driver_batch() -> None:
    name = f"count{next(_names)}"
    store, driver = _CountingStore(name), _CountingDriver(name)
    store.calls, driver.calls = [], []
    async with ServiceGroup(Backends(store, driver, Timings(**TIMINGS))) as group:
        for i in range(50):
            await beat(group, f"h{i:02d}")
        store.calls.clear()
        driver.calls.clear()
        async with client_for(create_app(Settings(), api_settings(), group=group)) as client:
            r = await client.get("/v1/services", headers=AUTH)
            assert len(r.json()["services"]) == 50
            assert (store.calls, driver.calls) == (["survey"], ["members"])
            store.calls.clear()
            driver.calls.clear()
            r = await client.get("/metrics", headers=AUTH)
            assert (store.calls, driver.calls) == (["survey"], ["members"])


async def test_invented_methods_and_paths_do_not_grow_metrics(mem_client: httpx.AsyncClient) -> None:
    """Label sets are closed: a client inventing methods and paths adds no series to /metrics."""

    async def metrics_size() -> int:
        r = await mem_client.get("/metrics", headers=AUTH)
        assert r.status_code == 200
        return len(r.content)

    # One of each kind first, so the "other" series exist before the measure (and the
    # series of /metrics itself, which a scrape counts only after it has rendered).
    await mem_client.request("INVENTED", "/v1/services", headers=AUTH)
    await mem_client.get("/nowhere/warm-up", headers=AUTH)
    await metrics_size()
    before = await metrics_size()
    for i in range(100):
        r = await mem_client.request(f"METHOD{i}", "/v1/services", headers=AUTH)
        assert r.status_code == 405
        r = await mem_client.request(f"M{i}", f"/invented/{i}", headers=AUTH)
        assert r.status_code == 404
    after = await metrics_size()
    # Only counts and latency sums change (a few digits); one new series of the latency
    # histogram alone is about 1.5 KB, so 200 new ones would add some 300 KB.
    assert after - before < 1024, f"/metrics grew from {before} to {after} bytes"
