"""The contract suite's group: every contract test runs over every store x driver pair."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import httpx
import pytest

from sg import ServiceGroup, Settings
from sg.api.app import create_app
from tests.support.api import TIMINGS, api_settings, client_for
from tests.support.backends import REPORT_INTERVAL, SERVICE_DOWN_TIME

_names = itertools.count()


@pytest.fixture
async def group(store_url: str, driver_url: str) -> AsyncIterator[ServiceGroup]:
    """An open ServiceGroup over each store x driver pair."""
    async with ServiceGroup.from_urls(
        store_url, driver_url, report_interval=REPORT_INTERVAL, service_down_time=SERVICE_DOWN_TIME
    ) as g:
        yield g


@pytest.fixture
async def mem_group() -> AsyncIterator[ServiceGroup]:
    """A group on a private memory store and memory driver."""
    name = f"api{next(_names)}"
    async with ServiceGroup.from_urls(f"memory://{name}", f"memory://{name}", **TIMINGS) as group:
        yield group


@pytest.fixture
async def client(mem_group: ServiceGroup) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_app(Settings(), api_settings(), group=mem_group)) as c:
        yield c
