"""Helpers for the API tests: tokens, settings, a real beat, an in-process client."""

from __future__ import annotations

from typing import Any

import httpx

from sg import Member, ServiceGroup, Settings
from sg.api.settings import ApiSettings

TOKEN = "test-token-0123456789abcdef"
OTHER_TOKEN = "other-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Generous timings: the machine is shared, and a test must not see a beat go stale.
TIMINGS: dict[str, Any] = {"report_interval": 2.0, "service_down_time": 10.0}


def api_settings(**api: Any) -> ApiSettings:
    """API settings with one token unless told otherwise."""
    return ApiSettings(**{"tokens": (TOKEN,), **api})


def settings(**api: Any) -> tuple[Settings, ApiSettings]:
    """Settings with one token unless told otherwise."""
    return Settings(), api_settings(**api)


async def beat(group: ServiceGroup, host: str, binary: str = "nova-compute", topic: str = "compute") -> None:
    """One real heartbeat: the record is fresh and the driver holds the member."""
    ok = await group.heartbeat(Member(host=host, binary=binary, topic=topic)).beat_once()
    assert ok


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sg-api")


async def uuid_of(group: ServiceGroup, host: str, binary: str = "nova-compute") -> str:
    return (await group.get(host, binary)).service.uuid
