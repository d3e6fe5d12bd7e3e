"""Fixtures for every tier: one URL fixture per store and per driver kind, parametrized.

The factories live in tests/support/backends.py; a new backend adds one line there.

Under ``CI=true`` every skip is a failure (``importorskip`` and ``skipif`` included):
a test that cannot run in CI hides whatever it was meant to catch.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from sg.testing.plugin import in_ci
from tests.support.backends import DRIVERS, STORES
from tests.support.systemctl import StandInSystemctl

#: The only tests that may skip under CI=true, by node id without parameters, and why.
CI_MAY_SKIP = {
    # These need systemd as PID 1, which the CI machine kind does not run (no unit can
    # be active there). The systemd: check's passing and failing paths still run in CI,
    # against a stand-in systemctl (test_check_runners.py, test_daemon_checks.py).
    "tests/unit/test_check_runners.py::test_systemd_check_on_a_live_systemd": "systemd is not PID 1",
    "tests/system/test_daemon_checks.py::test_systemd_check_follows_a_transient_unit": "systemd is not PID 1",
}


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _fail_skip_in_ci(nodeid: str, report: pytest.TestReport | pytest.CollectReport) -> None:
    if not report.skipped or hasattr(report, "wasxfail") or not in_ci():
        return
    if nodeid.partition("[")[0] in CI_MAY_SKIP:
        return
    report.outcome = "failed"
    report.longrepr = f"CI=true: a skip is a failure ({_skip_reason(report)})"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Under CI=true a skipped test (setup or call) reports as failed."""
    outcome = yield
    _fail_skip_in_ci(item.nodeid, outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    """Under CI=true a module skipped at collection (``importorskip``) reports as failed."""
    outcome = yield
    _fail_skip_in_ci(collector.nodeid, outcome.get_result())


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


@pytest.fixture
def stand_in_systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StandInSystemctl:
    """A stand-in ``systemctl`` first on ``PATH`` (child processes inherit it)."""
    fake = StandInSystemctl(tmp_path / "fake-systemd")
    monkeypatch.setenv("PATH", f"{fake.bin}{os.pathsep}{os.environ['PATH']}")
    return fake
