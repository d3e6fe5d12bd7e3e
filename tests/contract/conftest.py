"""The contract suite's group: every contract test runs over every store x driver pair."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sg import ServiceGroup
from tests.support.backends import REPORT_INTERVAL, SERVICE_DOWN_TIME


@pytest.fixture
async def group(store_url: str, driver_url: str) -> AsyncIterator[ServiceGroup]:
    """An open ServiceGroup over each store x driver pair."""
    async with ServiceGroup.from_urls(
        store_url, driver_url, report_interval=REPORT_INTERVAL, service_down_time=SERVICE_DOWN_TIME
    ) as g:
        yield g
