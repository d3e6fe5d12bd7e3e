"""Fixtures for every tier: one URL fixture per store and per driver kind, parametrized.

The factories live in tests/support/backends.py; a new backend adds one line there.
"""

from __future__ import annotations

import pytest

from tests.support.backends import DRIVERS, STORES


@pytest.fixture(params=sorted(STORES))
def store_url(request: pytest.FixtureRequest) -> str:
    """A URL of a fresh, empty store of each kind."""
    return STORES[request.param](request)


@pytest.fixture(params=sorted(DRIVERS))
def driver_url(request: pytest.FixtureRequest) -> str:
    """A URL of each liveness driver, private to the test."""
    return DRIVERS[request.param](request)
