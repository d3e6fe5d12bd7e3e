"""sg-api as a real uvicorn process on a free loopback port, plus schemathesis.

The process runs the console script with a config file on SQLite and the db
driver; the tests seed services through their own ServiceGroup on the same file.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from prometheus_client.parser import text_string_to_metric_families
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import response_schema_conformance

from sg import Member, ServiceGroup
from sg.api.routes import OPENAPI
from sg.testing.servers import free_port, stop_pid, wait_until
from tests.support.processes import clean_env

TOKEN = "process-token-0123456789abcdef"
ENV_TOKEN = "env-token-0123456789abcdef0123"
WRONG_TOKEN = "wrong-token-0123456789abcdef"
TIMINGS: dict[str, Any] = {"report_interval": 2.0, "service_down_time": 10.0}


def sg_api_command() -> list[str]:
    script = Path(sys.executable).parent / "sg-api"
    return [str(script)] if script.exists() else [sys.executable, "-m", "sg.api"]


@dataclass
class ApiProcess:
    """A running sg-api and where its logs go."""

    proc: subprocess.Popen[bytes]
    url: str
    store: str
    log: Path

    def logs(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def start_api(tmp: Path, config: str, *args: str, env: dict[str, str] | None = None) -> ApiProcess:
    port = free_port()
    path = tmp / "sg-api.toml"
    path.write_text(config, encoding="utf-8")
    log = tmp / "sg-api.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*sg_api_command(), "--config", str(path), "--listen", f"127.0.0.1:{port}", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**clean_env(), **(env or {})},
        )
    api = ApiProcess(proc, f"http://127.0.0.1:{port}", "", log)

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"sg-api exited {proc.returncode}:\n{api.logs()}")
        try:
            return httpx.get(f"{api.url}/healthz", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(healthy, 20.0, "sg-api answering /healthz")
    except BaseException:
        stop_pid(proc)
        raise
    return api


def config_for(store: str, **extra: str) -> str:
    lines = [f'store = "{store}"', 'driver = "db://"', "report_interval = 2.0", "service_down_time = 10.0"]
    lines += ["[api]", f'tokens = ["{TOKEN}"]', *(f"{k} = {v}" for k, v in extra.items())]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    """One sg-api process for the module, on SQLite, debug logging, two tokens."""
    tmp = tmp_path_factory.mktemp("sg-api")
    store = f"sqlite://{tmp}/services.db"
    api = start_api(tmp, config_for(store), "--log-level", "debug", env={"SG_API_TOKEN": ENV_TOKEN})
    api.store = store
    try:
        yield api
    finally:
        stop_pid(api.proc)


def seed(store: str, *hosts: str) -> None:
    async def run() -> None:
        async with ServiceGroup.from_urls(store, "db://", **TIMINGS) as group:
            for host in hosts:
                spec = Member(host=host, binary="nova-compute", topic="compute")
                assert await group.heartbeat(spec).beat_once()

    anyio.run(run)


def test_real_process_serves_and_changes_services(api: ApiProcess) -> None:
    seed(api.store, "p1", "p2")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=api.url, headers=auth, timeout=10.0) as client:
        r = client.get("/v1/services", params={"host": "p1"})
        assert r.status_code == 200
        (svc,) = r.json()["services"]
        assert (svc["host"], svc["state"]) == ("p1", "up")
        r = client.put(
            f"/v1/services/{svc['uuid']}", json={"status": "disabled", "disabled_reason": "rack 4"}
        )
        assert r.json()["service"]["status"] == "disabled"
        assert client.delete(f"/v1/services/{svc['uuid']}").status_code == 409
        assert client.delete(f"/v1/services/{svc['uuid']}", params={"force": "true"}).status_code == 204
        assert client.get(f"/v1/services/{svc['uuid']}").status_code == 404
        # The token from SG_API_TOKEN works as well as the one in the file.
        r = client.get("/v1/services", headers={"Authorization": f"Bearer {ENV_TOKEN}"})
        assert r.status_code == 200
        metrics = client.get("/metrics")
        families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
        hosts = {s.labels["host"] for s in families["sg_service_up"].samples}
        assert "p2" in hosts
        assert "p1" not in hosts
        assert client.get("/openapi.json").json() == OPENAPI


def test_tokens_never_reach_the_log(api: ApiProcess) -> None:
    seed(api.store, "t1")
    with httpx.Client(base_url=api.url, timeout=10.0) as client:
        uuid = client.get("/v1/services", headers={"Authorization": f"Bearer {TOKEN}"}).json()["services"][0][
            "uuid"
        ]
        for token in (TOKEN, ENV_TOKEN, WRONG_TOKEN):
            headers = {"Authorization": f"Bearer {token}"}
            client.get("/v1/services", headers=headers)
            client.put(f"/v1/services/{uuid}", json={"forced_down": False}, headers=headers)
            client.delete("/v1/services/00000000-0000-4000-8000-000000000000", headers=headers)
            client.get("/v1/services", params={"token": token}, headers=headers)  # 400, names only the key
        assert client.put(f"/v1/services/{uuid}", json={"forced_down": True}).status_code == 401
        assert (
            client.put(
                f"/v1/services/{uuid}",
                json={"forced_down": True},
                headers={"Authorization": f"Bearer {WRONG_TOKEN}"},
            ).status_code
            == 401
        )
    logs = api.logs()
    assert "request" in logs  # debug logging is on, so requests were logged ...
    assert "api_starting" in logs
    for token in (TOKEN, ENV_TOKEN, WRONG_TOKEN):
        assert token not in logs  # ... and no token was


def test_bad_config_exits_78(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[api]\ntokens = ["short"]\nlisten = "127.0.0.1:1"\n', encoding="utf-8")
    done = subprocess.run([*sg_api_command(), "--config", str(path)], capture_output=True, timeout=30)
    assert done.returncode == 78
    assert b"tokens[0]" in done.stderr + done.stdout
    assert b"short" not in done.stderr + done.stdout
    path.write_text("[api]\ncolour = 1\n", encoding="utf-8")
    done = subprocess.run([*sg_api_command(), "--config", str(path)], capture_output=True, timeout=30)
    assert done.returncode == 78
    assert b"colour" in done.stderr + done.stdout
    path.write_text("", encoding="utf-8")
    done = subprocess.run(
        [*sg_api_command(), "--config", str(path), "--listen", "nowhere"], capture_output=True, timeout=30
    )
    assert done.returncode == 78
    assert b"listen" in done.stderr + done.stdout


def test_database_schema_newer_than_the_api_exits_78(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "services.db"
    path = tmp_path / "sg.toml"
    path.write_text(f'store = "sqlite://{db}"\n[api]\nlisten = "127.0.0.1:{free_port()}"\n', encoding="utf-8")
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE sg_schema (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO sg_schema (version) VALUES (99)")
    done = subprocess.run([*sg_api_command(), "--config", str(path)], capture_output=True, timeout=30)
    assert done.returncode == 78
    assert b'"event": "configuration_error"' in done.stderr + done.stdout
    assert b"schema version 99, newer than this release" in done.stderr + done.stdout


def test_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    api = start_api(tmp_path, config_for(f"sqlite://{tmp_path}/s.db"))
    stop_pid(api.proc)
    assert api.proc.returncode == 0
    assert "api_stopped" in api.logs()


# Valid and invalid requests alike (negative mode breaks the schema on purpose).
# /v1/events is a stream that never ends by itself (tests/contract/test_events.py).
schema = schemathesis.openapi.from_dict(
    OPENAPI,
    config=SchemathesisConfig.from_dict({"generation": {"mode": "all"}}),
).exclude(path="/v1/events")


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_finds_no_server_error(case: Any, api: ApiProcess) -> None:
    response = case.call(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text}"
    # Every answer, error or not, is JSON or Prometheus text as the document says.
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
