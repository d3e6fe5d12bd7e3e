"""The contract suite's group: every contract test runs over every store x driver pair."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import httpx
import pytest

from sg import ServiceGroup, Settings
from sg.api.app import create_app
from tests.support.api import TIMINGS, api_settings, client_for
from tests.support.backends import DRIVERS, REPORT_INTERVAL, SERVICE_DOWN_TIME, STORES

_names = itertools.count()


@pytest.fixture
async def group(store_url: str, driver_url: str) -> AsyncIterator[ServiceGroup]:
    """An open ServiceGroup over each store x driver pair."""
    async with ServiceGroup.from_urls(
        store_url, driver_url, report_interval=REPORT_INTERVAL, service_down_time=SERVICE_DOWN_TIME
    ) as g:
        yield g


#: The API suite's backends: the memory pair, and every store with every driver.
API_BACKENDS = ["memory", *(f"{s}+{d}" for s in sorted(STORES) for d in sorted(DRIVERS))]


@pytest.fixture(params=API_BACKENDS)
def api_urls(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(store URL, driver URL) of each API backend pair, private to the test."""
    if request.param == "memory":
        name = f"api{next(_names)}"
        return f"memory://{name}", f"memory://{name}"
    store, driver = request.param.split("+")
    return STORES[store](request), DRIVERS[driver](request)


@pytest.fixture
async def api_group(api_urls: tuple[str, str]) -> AsyncIterator[ServiceGroup]:
    """A group for the API suite, on each pair of API_BACKENDS."""
    async with ServiceGroup.from_urls(*api_urls, **TIMINGS) as group:
        yield group


@pytest.fixture
async def client(api_group: ServiceGroup) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_app(Settings(), api_settings(), group=api_group)) as c:
        yield c


@pytest.fixture
async def mem_group() -> AsyncIterator[ServiceGroup]:
    """A group on a private memory store and driver: for what no backend changes
    (input validation, routes, the OpenAPI document), so it runs once, not per backend."""
    name = f"api{next(_names)}"
    async with ServiceGroup.from_urls(f"memory://{name}", f"memory://{name}", **TIMINGS) as group:
        yield group


@pytest.fixture
async def mem_client(mem_group: ServiceGroup) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_app(Settings(), api_settings(), group=mem_group)) as c:
        yield c
