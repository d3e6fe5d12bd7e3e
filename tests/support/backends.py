"""The store and driver backends the contract suite runs over.

Each entry maps a backend name to a (synchronous) factory of a URL, given the
pytest request, so it can use server fixtures through ``request.getfixturevalue``
(an async fixture cannot be resolved from inside another async fixture). A new
backend adds one line.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

#: Short timings for the contract suite, so staleness tests finish quickly (2.5 x floor).
REPORT_INTERVAL = 0.2
SERVICE_DOWN_TIME = 1.0

UrlFactory = Callable[[pytest.FixtureRequest], str]


def _sqlite(request: pytest.FixtureRequest) -> str:
    tmp = request.getfixturevalue("tmp_path")
    return f"sqlite://{tmp}/services.db"


def _postgres(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("sg_postgres_url")
    return url


def _db(request: pytest.FixtureRequest) -> str:
    return "db://"


def _memcached(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("sg_memcached_url")
    return url


def _memcached3(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("sg_memcached3_url")
    return url


STORES: dict[str, UrlFactory] = {
    "sqlite": _sqlite,
    "postgresql": _postgres,
}


def _zookeeper(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("sg_zookeeper_url")
    return url


DRIVERS: dict[str, UrlFactory] = {
    "db": _db,
    "memcached": _memcached,
    "memcached3": _memcached3,
    "zookeeper": _zookeeper,
}
