"""The os-services layer (Nova compute API v2.1) driven by the real OpenStack CLI
(python-openstackclient, extra ``interop``) as a subprocess, against uvicorn serving the
routes over a real ServiceGroup (SQLite + db); then the wire details over HTTP."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from sg.api.app import create_app
from sg.api.auth import TokenAuth
from sg.api.settings import ApiSettings
from sg.config import Settings
from sg.errors import NotFound
from sg.group import ServiceGroup
from sg.model import Member, ServiceKey
from tests.support.interop import require_tool, serve
from tests.support.processes import BIN

pytestmark = pytest.mark.slow

REPORT_INTERVAL = 0.2
DOWN_TIME = 1.0
TOKEN = "compute-test-token-0123456789"
C1 = ServiceKey("c1", "nova-compute")
C2 = ServiceKey("c2", "nova-compute")
CTL = ServiceKey("ctl-1", "nova-scheduler")
LIST = "/v2.1/os-services"


@dataclass
class Cloud:
    group: ServiceGroup
    check: TokenAuth
    url: str
    home: Path


@asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[Cloud]:
    """c1 and ctl-1 up (beating in this process), c2 down (it left). A context manager,
    not a fixture: its task groups must be entered and left by the test's own task."""
    async with ServiceGroup.from_urls(
        f"sqlite://{tmp_path}/services.db", report_interval=REPORT_INTERVAL, service_down_time=DOWN_TIME
    ) as group:
        async with group.join_member(Member(C2.host, C2.binary, "compute", zone="nova")):
            pass
        # sg-api itself: the os-services routes come from its one route table.
        api = ApiSettings(tokens=(TOKEN,), token_names=("ops-team",), open_reads=True)
        app = create_app(Settings(), api, group=group)
        check = app.state.context.auth
        async with (
            group.join_member(Member(C1.host, C1.binary, "compute", zone="nova")) as c1,
            group.join(CTL.binary, "scheduler", host=CTL.host) as ctl,
            serve(app) as url,
        ):
            await c1.ready.wait()
            await ctl.ready.wait()
            home = tmp_path / "home"
            home.mkdir()
            yield Cloud(group, check, url, home)


async def openstack(cloud: Cloud, *args: str, token: str | None = TOKEN) -> tuple[int, str, str]:
    """Run the real `openstack` CLI against the layer; no Keystone, no clouds.yaml."""
    binary = require_tool("openstack", str(BIN / "openstack"))
    auth = (
        ["--os-auth-type", "none"]
        if token is None
        else ["--os-auth-type", "admin_token", "--os-token", token]
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "SG_"))}
    env["HOME"] = str(cloud.home)  # no ~/.config/openstack/clouds.yaml of the host
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [binary, *auth, "--os-endpoint", f"{cloud.url}/v2.1", *args], env=env, check=False
        )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def listing(cloud: Cloud, *args: str, token: str | None = TOKEN) -> list[dict[str, Any]]:
    code, out, err = await openstack(cloud, "compute", "service", "list", *args, "-f", "json", token=token)
    assert code == 0, err
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


async def test_cli_lists_services_with_open_reads_and_refuses_without(tmp_path: Path) -> None:
    async with running(tmp_path) as cloud:
        rows = await listing(cloud, "--long", token=None)  # `none`: X-Auth-Token notused
        by_host = {(r["Host"], r["Binary"]): r for r in rows}
        assert set(by_host) == {C1, C2, CTL}
        c1, c2, ctl = by_host[C1], by_host[C2], by_host[CTL]
        assert c1["ID"] == (await cloud.group.get(*C1)).service.uuid
        assert (c1["Zone"], c1["Status"], c1["State"], c1["Forced Down"]) == ("nova", "enabled", "up", False)
        assert (c2["State"], ctl["State"], ctl["Zone"]) == ("down", "up", "internal")
        assert c1["Updated At"]
        assert "+" not in c1["Updated At"]  # Nova's naive UTC
        assert c1["Disabled Reason"] is None

        rows = await listing(cloud, "--host", "c1", "--service", "nova-compute")
        assert [(r["Host"], r["Binary"]) for r in rows] == [C1]

        # Reads need a token once open_reads is off; `none` sends none.
        cloud.check.open_reads = False
        code, _, err = await openstack(cloud, "compute", "service", "list", token=None)
        assert code != 0
        assert "401" in err


async def test_cli_disables_forces_down_and_enables(tmp_path: Path) -> None:
    async with running(tmp_path) as cloud:
        group = cloud.group
        set_ = ("compute", "service", "set")
        code, _, err = await openstack(
            cloud, *set_, "--disable", "--disable-reason", "maintenance", "--down", *C1
        )
        assert code == 0, err
        status = await group.get(*C1)
        assert (status.service.disabled, status.service.disabled_reason) == (True, "maintenance")
        assert status.service.forced_down
        assert (status.verdict.state, status.verdict.reason) == ("down", "forced_down")

        code, _, err = await openstack(cloud, *set_, "--enable", "--up", *C1)
        assert code == 0, err
        status = await group.get(*C1)
        assert (status.service.disabled, status.service.disabled_reason, status.service.forced_down) == (
            False,
            None,
            False,
        )
        assert status.verdict.state == "up"

        # The audit trail: who (the token's name), through what, what, in order.
        trail = [(a.action, a.actor, a.via, a.why) for a in await group.actions(key=C1)]
        assert trail == [
            ("disable", "ops-team", "os-services", "maintenance"),
            ("force_down", "ops-team", "os-services", None),
            ("enable", "ops-team", "os-services", None),
            ("force_up", "ops-team", "os-services", None),
        ]

        # A write with the `none` plugin is refused even with open_reads, and changes nothing.
        code, _, _ = await openstack(cloud, *set_, "--disable", *C1, token=None)
        assert code != 0
        assert not (await group.get(*C1)).service.disabled


async def test_cli_deletes_only_a_down_service(tmp_path: Path) -> None:
    async with running(tmp_path) as cloud:
        group = cloud.group
        # Delete takes the UUID; a live service is refused (409), a down one goes.
        c1_id, c2_id = (await group.get(*C1)).service.uuid, (await group.get(*C2)).service.uuid
        code, _, err = await openstack(cloud, "compute", "service", "delete", c1_id)
        assert code != 0
        assert "409" in err
        assert "stop it first" in err
        await group.get(*C1)  # still there
        code, _, err = await openstack(cloud, "compute", "service", "delete", c2_id)
        assert code == 0, err
        with pytest.raises(NotFound):
            await group.get(*C2)
        assert [(a.action, a.actor) for a in await group.actions(uuid=c2_id)] == [("delete", "ops-team")]
        assert await group.actions(uuid=c1_id) == []  # the refused delete left no trace


async def test_wire_contract(tmp_path: Path) -> None:
    async with running(tmp_path) as cloud:
        headers = {"X-Auth-Token": TOKEN}
        async with httpx.AsyncClient(base_url=cloud.url, timeout=10) as http:
            for path in ("/v2.1", "/v2.1/"):
                doc = (await http.get(path)).json()["version"]
                assert (doc["id"], doc["status"], doc["version"], doc["min_version"]) == (
                    "v2.1",
                    "CURRENT",
                    "2.69",
                    "2.1",
                )
                assert doc["links"][0]["href"] == f"{cloud.url}/v2.1/"

            # Microversions: echoed in both headers; none asked is 2.1; outside 2.1-2.69 is 406.
            answer = await http.get(LIST, headers={**headers, "OpenStack-API-Version": "compute 2.53"})
            assert answer.headers["openstack-api-version"] == "compute 2.53"
            assert answer.headers["x-openstack-nova-api-version"] == "2.53"
            answer = await http.get(LIST, headers={**headers, "X-OpenStack-Nova-API-Version": "latest"})
            assert answer.headers["x-openstack-nova-api-version"] == "2.69"
            assert (await http.get(LIST, headers=headers)).headers["openstack-api-version"] == "compute 2.1"
            too_new = await http.get(LIST, headers={**headers, "OpenStack-API-Version": "compute 2.90"})
            assert too_new.status_code == 406
            assert "maximum is 2.69" in too_new.json()["notAcceptable"]["message"]

            rows = (await http.get(LIST, params={"binary": "nova-compute"})).json()["services"]
            assert sorted(s["host"] for s in rows) == ["c1", "c2"]
            assert set(rows[0]) == {
                "id",
                "binary",
                "host",
                "zone",
                "status",
                "state",
                "updated_at",
                "disabled_reason",
                "forced_down",
            }
            bad = await http.get(LIST, params={"zone": "nova"})
            assert bad.status_code == 400
            assert "zone" in bad.json()["badRequest"]["message"]

            c1 = (await cloud.group.get(*C1)).service.uuid
            url = f"/v2.1/os-services/{c1}"
            for body, words in (
                ({"status": "enabled", "disabled_reason": "x"}, "with status 'enabled' is invalid"),
                ({"disabled_reason": "x"}, "At least one of 'status' or 'forced_down'"),
                ({}, "At least one of"),
                ({"status": "paused"}, "status must be"),
                ({"forced_down": "yes"}, "forced_down must be true or false"),
                ({"status": "disabled", "host": "c1"}, "unknown field 'host'"),
                ({"status": "disabled", "disabled_reason": ""}, "disabled_reason must be"),
            ):
                answer = await http.put(url, json=body, headers=headers)
                assert answer.status_code == 400, body
                assert words in answer.json()["badRequest"]["message"], body
            assert (await http.put(url, content=b"[1]", headers=headers)).status_code == 400
            assert not (await cloud.group.get(*C1)).service.disabled  # nothing changed

            answer = await http.put(
                url, json={"status": "disabled", "disabled_reason": "rack 4"}, headers=headers
            )
            assert answer.status_code == 200
            assert answer.json()["service"] | {"updated_at": None} == {
                "id": c1,
                "binary": "nova-compute",
                "host": "c1",
                "zone": "nova",
                "status": "disabled",
                "state": "up",
                "updated_at": None,
                "disabled_reason": "rack 4",
                "forced_down": False,
            }

            # Writes need a real token, whatever open_reads says.
            refused = await http.put(url, json={"status": "enabled"}, headers={"X-Auth-Token": "notused"})
            assert refused.status_code == 401
            assert refused.json()["unauthorized"]["code"] == 401
            bearer = await http.put(
                url, json={"status": "enabled"}, headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert bearer.status_code == 200

            # A wrong token reads only while reads are open.
            wrong = {"X-Auth-Token": "not-the-token-0123456789"}
            assert (await http.get(LIST, headers=wrong)).status_code == 200
            cloud.check.open_reads = False
            assert (await http.get(LIST, headers=wrong)).status_code == 401
            assert (await http.get(LIST, headers=headers)).status_code == 200

            missing = await http.delete(f"/v2.1/os-services/{uuid.uuid4()}", headers=headers)
            assert missing.status_code == 404
            assert missing.json()["itemNotFound"]["code"] == 404
            assert (await http.delete("/v2.1/os-services/7", headers=headers)).status_code == 400
            assert (await http.put("/v2.1/os-services/enable", json={}, headers=headers)).status_code == 400
