"""sg-api's operators' routes in process: the status page and its assets, named tokens
(Bearer or X-Auth-Token) in the audit trail, GET /v1/services/{uuid}/actions, and prune."""

from __future__ import annotations

import uuid as uuidlib

from sg import ServiceGroup, Settings
from sg.api.app import create_app
from sg.api.settings import ApiSettings
from tests.support.api import AUTH, OTHER_TOKEN, TOKEN, beat, client_for, uuid_of
from tests.support.waiting import eventually

NAMED = ApiSettings(tokens=(TOKEN, OTHER_TOKEN), token_names=("ops-team",))


async def test_the_page_and_its_assets_need_no_token(mem_group: ServiceGroup) -> None:
    async with client_for(create_app(Settings(), ApiSettings(tokens=(TOKEN,)), group=mem_group)) as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert 'src="static/app.js"' in page.text
        script = await client.get("/static/app.js")
        assert (script.status_code, script.headers["content-type"]) == (200, "text/javascript; charset=utf-8")
        assert (await client.get("/static/style.css")).status_code == 200
        missing = await client.get("/static/..%2Fapp.py")
        assert missing.status_code == 404
        assert (await client.get("/static/index.html")).status_code == 404
        # The data is not open: the stream wants the token.
        assert (await client.get("/v1/events")).status_code == 401


async def test_changes_are_recorded_under_the_token_name(mem_group: ServiceGroup) -> None:
    await beat(mem_group, "h1")
    uuid = await uuid_of(mem_group, "h1")
    async with client_for(create_app(Settings(), NAMED, group=mem_group)) as client:
        url = f"/v1/services/{uuid}"
        assert (
            await client.put(url, json={"status": "disabled", "disabled_reason": "rack 4"}, headers=AUTH)
        ).status_code == 200
        # OpenStack's header works on /v1 too, and the second token has no name of its own.
        other = {"X-Auth-Token": OTHER_TOKEN}
        assert (await client.put(url, json={"forced_down": True}, headers=other)).status_code == 200
        assert (
            await client.put(url, json={"forced_down": False}, headers={"X-Auth-Token": "notused"})
        ).status_code == 401
        answer = await client.get(f"{url}/actions", headers=AUTH)
        assert answer.status_code == 200
        rows = answer.json()["actions"]
        assert [(r["action"], r["actor"], r["via"], r["why"]) for r in rows] == [
            ("disable", "ops-team", "api", "rack 4"),
            ("force_down", "tokens[1]", "api", None),
        ]
        assert all(r["at"] and r["uuid"] == uuid for r in rows)
        # Reads of the trail need a token like every read; bad and unknown uuids.
        assert (await client.get(f"{url}/actions")).status_code == 401
        bad = await client.get("/v1/services/nope/actions", headers=AUTH)
        assert (bad.status_code, bad.json()["error"]["field"]) == (400, "uuid")
        assert (await client.get(f"/v1/services/{uuidlib.uuid4()}/actions", headers=AUTH)).status_code == 404
        # A deleted service's trail stays readable by its uuid.
        assert (await client.delete(url, params={"force": "true"}, headers=AUTH)).status_code == 204
        rows = (await client.get(f"{url}/actions", headers=AUTH)).json()["actions"]
        assert [r["action"] for r in rows] == ["disable", "force_down", "delete"]


async def test_prune_lists_then_deletes_services_down_for_longer_than_asked(mem_group: ServiceGroup) -> None:
    async with mem_group.join("nova-compute", "compute", host="gone"):
        pass
    gone = await uuid_of(mem_group, "gone")
    async with (
        mem_group.join("nova-compute", "compute", host="alive") as alive,
        client_for(create_app(Settings(), NAMED, group=mem_group)) as client,
    ):
        await alive.ready.wait()
        for params, field in (
            ({}, "down_for"),
            ({"down_for": "7x"}, "down_for"),
            ({"down_for": "0"}, "down_for"),
        ):
            answer = await client.get("/v1/services/prune", params=params, headers=AUTH)
            assert (answer.status_code, answer.json()["error"]["field"]) == (400, field)
        assert (await client.get("/v1/services/prune", params={"down_for": "7d"}, headers=AUTH)).json() == {
            "services": []
        }

        async def listed() -> list[str]:
            answer = await client.get("/v1/services/prune", params={"down_for": "0.2s"}, headers=AUTH)
            return [s["host"] for s in answer.json()["services"]]

        await eventually(listed, lambda hosts: hosts == ["gone"], 5, "gone listed")
        # Listing changed nothing; deleting needs a write token.
        assert (await client.post("/v1/services/prune", params={"down_for": "0.2s"})).status_code == 401
        done = await client.post(
            "/v1/services/prune", params={"down_for": "0.2s", "reason": "decommissioned"}, headers=AUTH
        )
        assert done.status_code == 200
        body = done.json()
        assert ([s["host"] for s in body["pruned"]], body["refused"]) == (["gone"], [])
        rows = (await client.get(f"/v1/services/{gone}/actions", headers=AUTH)).json()["actions"]
        assert [(r["action"], r["actor"], r["why"]) for r in rows] == [
            ("prune", "ops-team", "decommissioned")
        ]
        remaining = (await client.get("/v1/services", headers=AUTH)).json()["services"]
        assert [s["host"] for s in remaining] == ["alive"]
