"""Shared fixtures: every contract test runs over every store and every driver."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sg import ServiceGroup
from tests.backends import DRIVERS, STORES

#: Short timings so staleness tests finish quickly (2.5 x report_interval floor).
REPORT_INTERVAL = 0.2
SERVICE_DOWN_TIME = 1.0


@pytest.fixture(params=sorted(STORES))
def store_url(request: pytest.FixtureRequest) -> str:
    """A URL of a fresh, empty store of each kind."""
    return STORES[request.param](request)


@pytest.fixture(params=sorted(DRIVERS))
def driver_url(request: pytest.FixtureRequest) -> str:
    """A URL of each liveness driver, private to the test."""
    return DRIVERS[request.param](request)


@pytest.fixture
async def group(store_url: str, driver_url: str) -> AsyncIterator[ServiceGroup]:
    """An open ServiceGroup over each store x driver pair."""
    async with ServiceGroup.from_urls(
        store_url, driver_url, report_interval=REPORT_INTERVAL, service_down_time=SERVICE_DOWN_TIME
    ) as g:
        yield g
