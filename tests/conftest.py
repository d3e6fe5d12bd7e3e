"""Fixtures for every tier: one URL fixture per store and per driver kind, parametrized.

The factories live in tests/support/backends.py; a new backend adds one line there.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from tests.support.backends import DRIVERS, STORES

# Hypothesis profiles for the property tests (tests/property/), registered here so that
# `--hypothesis-profile=long` finds them when pytest starts. The default keeps the whole
# property set to seconds in `make test`; `long` is the soak (README, "Tests").
_PROPERTY = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("sg", max_examples=200, **_PROPERTY)
settings.register_profile("long", max_examples=10_000, **_PROPERTY)
settings.load_profile("sg")


@pytest.fixture(params=sorted(STORES))
def store_url(request: pytest.FixtureRequest) -> str:
    """A URL of a fresh, empty store of each kind."""
    return STORES[request.param](request)


@pytest.fixture(params=sorted(DRIVERS))
def driver_url(request: pytest.FixtureRequest) -> str:
    """A URL of each liveness driver, private to the test."""
    return DRIVERS[request.param](request)
