"""Every backoff is capped in its exponent, not only in its result (issue 10, defect 1)."""

from __future__ import annotations

import itertools
import math

import pytest
from structlog.testing import capture_logs

from sg.backends import Backends
from sg.heartbeat import Heartbeat
from sg.model import Member
from sg.timings import Timings, capped_backoff

#: sg.heartbeat.MAX_LOG_GAP, spelled out so the test also runs against older code.
MAX_LOG_GAP = 1024


@pytest.mark.parametrize("attempt", [0, 1, 10, 1023, 1024, 1025, 10**6, 10**18])
def test_capped_backoff_is_finite_and_bounded_at_any_attempt(attempt: int) -> None:
    delay = capped_backoff(attempt, base=0.05, cap=0.002)
    assert math.isfinite(delay)
    assert 0 < delay <= 0.002


def test_capped_backoff_doubles_until_the_cap() -> None:
    delays = [capped_backoff(n, base=0.05, cap=2.0) for n in range(8)]
    assert delays[:6] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6]
    assert delays[6:] == [2.0, 2.0]


def test_heartbeat_log_backoff_gap_is_capped() -> None:
    """A long outage keeps logging: at most MAX_LOG_GAP failures between two logs (an
    uncapped doubling logs once after 8,192 failures and then not until 16,384)."""
    backends = Backends.from_urls("memory://logbackoff", "memory://logbackoff", Timings())
    hb = Heartbeat(backends, Member("h1", "sg-test", "t"))
    failures = 10 * MAX_LOG_GAP
    with capture_logs() as logs:
        for _ in range(failures):
            hb._failed("store", "down")
    logged = [e["failures"] for e in logs if e["event"] == "beat_failed"]
    assert logged[:3] == [1, 2, 4]  # doubling while the outage is young
    gaps = [b - a for a, b in itertools.pairwise(logged)]
    assert max(gaps) <= MAX_LOG_GAP, gaps
    assert failures - logged[-1] < MAX_LOG_GAP
