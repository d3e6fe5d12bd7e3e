"""REST bodies and query strings of any shape: a 4xx with a JSON error (naming the
field for a 400), never a 5xx. schemathesis (tests/system/test_api_process.py) covers
the documented shapes; these reach what it does not: bodies of any JSON type and
bytes that are not JSON or UTF-8 at all, on a SQL store."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from hypothesis import given
from hypothesis import strategies as st

from sg import Member, ServiceGroup, Settings
from sg.api.app import create_app
from tests.support.api import AUTH, api_settings, client_for
from tests.support.portal import portal

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)
FIELDS = st.sampled_from(["status", "disabled_reason", "forced_down", "other"])
BODIES = st.one_of(
    JSON.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(FIELDS, JSON | st.sampled_from(["enabled", "disabled"]), max_size=3).map(
        lambda d: json.dumps(d).encode()
    ),
    st.binary(max_size=40),
    st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
QUERY = st.dictionaries(
    st.sampled_from(["topic", "binary", "host", "state", "force", "only_up", "x"]),
    st.text(max_size=10),
    max_size=3,
)


def assert_4xx_or_ok(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.status_code, r.text)
    if r.status_code >= 400:
        error = r.json()["error"]
        assert error["message"]
        if r.status_code == 400:
            assert "field" in error, error


def test_any_body_and_query_is_a_4xx_or_ok(tmp_path: Path) -> None:
    with portal() as p:
        group = ServiceGroup.from_urls(
            f"sqlite://{tmp_path}/rest.db", "db://", report_interval=1, service_down_time=30
        )
        p.call(group.__aenter__)
        p.call(group.store.register, Member("c1", "nova-compute", "compute"))
        uuid = p.call(group.get, "c1", "nova-compute").service.uuid
        client = client_for(create_app(Settings(), api_settings(), group=group))
        try:

            @given(body=BODIES, query=QUERY)
            def check(body: bytes, query: dict[str, str]) -> None:
                async def send() -> list[httpx.Response]:
                    headers = {**AUTH, "Content-Type": "application/json"}
                    return [
                        await client.put(f"/v1/services/{uuid}", content=body, headers=headers),
                        await client.get("/v1/services", params=query, headers=AUTH),
                        await client.get("/v1/services/min-version", params=query, headers=AUTH),
                        await client.delete(f"/v1/services/{uuid}x", params=query, headers=AUTH),
                    ]

                for r in p.call(send):
                    assert_4xx_or_ok(r)

            check()
        finally:
            p.call(client.aclose)
            p.call(group.aclose)
