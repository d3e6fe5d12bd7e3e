"""sg/timings.py: every timing validated once, with its floor, the one-year ceiling and
the 2.5x rule; the beat's deadline."""

from __future__ import annotations

import math

import pytest

from sg.errors import ConfigError
from sg.timings import (
    MAX_BACKOFF_EXPONENT,
    MAX_DURATION,
    MIN_DOWN_TIME_FACTOR,
    MIN_REPORT_INTERVAL,
    MIN_TIMEOUT,
    Timings,
    capped_backoff,
    parse_duration,
)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"store_timeout": True}, "store_timeout must be a number of seconds, got True"),
        ({"store_timeout": "5"}, "store_timeout must be a number of seconds, got '5'"),
        ({"store_timeout": 0}, "store_timeout must be a positive number of seconds, got 0"),
        ({"store_timeout": -1.0}, "store_timeout must be a positive number of seconds, got -1.0"),
        ({"store_timeout": math.inf}, "store_timeout must be a positive number of seconds, got inf"),
        ({"store_timeout": math.nan}, "store_timeout must be a positive number of seconds, got nan"),
        ({"store_timeout": 0.04}, "store_timeout must be at least 0.05s, got 0.04s"),
        ({"driver_timeout": 0.04}, "driver_timeout must be at least 0.05s, got 0.04s"),
        ({"max_clock_skew": 0.04}, "max_clock_skew must be at least 0.05s, got 0.04s"),
        ({"report_interval": 0.09}, "report_interval must be at least 0.1s, got 0.09s"),
        (
            {"report_interval": 0.1, "service_down_time": 0.24},
            "service_down_time must be at least 0.25s, got 0.24s",
        ),
        (
            {"driver_timeout": MAX_DURATION + 1},
            f"driver_timeout must be at most {MAX_DURATION:g}s (one year), got {MAX_DURATION + 1:g}s",
        ),
        (
            {"report_interval": 10.0, "service_down_time": 24.9},
            "service_down_time (24.9s) must be at least 2.5 x report_interval (10s), i.e. >= 25s",
        ),
    ],
)
def test_bad_timings_name_the_timing(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Timings(**changes)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_the_bounds_themselves_are_accepted() -> None:
    at_floor = Timings(
        report_interval=MIN_REPORT_INTERVAL,
        service_down_time=MIN_REPORT_INTERVAL * MIN_DOWN_TIME_FACTOR,
        store_timeout=MIN_TIMEOUT,
        driver_timeout=MIN_TIMEOUT,
        max_clock_skew=MIN_TIMEOUT,
    )
    assert at_floor.service_down_time == 0.25
    assert Timings(store_timeout=MAX_DURATION).store_timeout == MAX_DURATION
    assert Timings(report_interval=4, service_down_time=10).service_down_time == 10.0
    assert isinstance(Timings(store_timeout=3).store_timeout, float)


def test_check_interval_names_what_it_checks() -> None:
    timings = Timings(report_interval=1, service_down_time=10)
    assert timings.check_interval(4) == 4.0
    with pytest.raises(
        ConfigError, match=r"^service_down_time \(10s\) must be at least 2.5 x report_interval \(4.1s\)"
    ):
        timings.check_interval(4.1)
    with pytest.raises(ConfigError, match=r"^service_down_time \(10s\) must be at least 2.5 x web interval"):
        timings.check_interval(4.1, "web interval")
    with pytest.raises(ConfigError, match=r"^web interval must be at least 0.1s"):
        timings.check_interval(0.05, "web interval")


def test_replace_validates_again() -> None:
    timings = Timings(report_interval=1, service_down_time=10)
    assert timings.replace(store_timeout=2) == Timings(
        report_interval=1, service_down_time=10, store_timeout=2
    )
    assert timings.replace() == timings
    with pytest.raises(ConfigError, match="service_down_time"):
        timings.replace(report_interval=5)


def test_a_beat_is_bounded_by_half_the_down_time() -> None:
    timings = Timings(report_interval=1, service_down_time=10)
    assert timings.beat_timeout(3.0) == 3.0
    assert timings.beat_timeout(30.0) == 5.0


def test_capped_backoff_starts_at_base_and_caps_its_exponent() -> None:
    assert capped_backoff(0, base=0.5, cap=100.0) == 0.5
    assert capped_backoff(-3, base=0.5, cap=100.0) == 0.5  # a negative attempt is the first
    assert capped_backoff(3, base=0.5, cap=100.0) == 4.0
    assert capped_backoff(3, base=0.5, cap=3.0) == 3.0
    # Past the exponent's cap the delay stops growing, even with no cap on the result.
    top = 2.0**MAX_BACKOFF_EXPONENT
    assert capped_backoff(MAX_BACKOFF_EXPONENT, base=1.0, cap=math.inf) == top
    assert capped_backoff(10**6, base=1.0, cap=math.inf) == top


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("90s", 90.0),
        (" 15M ", 900.0),
        ("1.5m", 90.0),
        ("12h", 43200.0),
        ("7d", 604800.0),
        ("2w", 1209600.0),
        ("1", 1.0),
        ("0.5", 0.5),
        ("3650d", 10 * 365 * 86400.0),
    ],
)
def test_parse_duration_reads_every_unit(text: str, seconds: float) -> None:
    assert parse_duration(text, "--down-for") == seconds


@pytest.mark.parametrize("text", ["0", "0s", "3650.5d", "3651d", "", "m", "5y", "-5m", "5 mins", "1e3"])
def test_parse_duration_refuses_naming_the_option(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration(text, "down_for")
    assert str(info.value) == (
        "down_for must be a positive duration such as 90s, 15m, 12h, 7d or 2w (at most 10 years), "
        f"got {text!r}"
    )


def test_a_timing_is_bounded_by_one_year_not_the_parsers_ten() -> None:
    """The timings' bound is one year, as its refusal says; ``parse_duration``'s ten
    years (a prune's age) once shadowed it, and Timings took nine years more."""
    year = 365 * 24 * 3600.0
    assert Timings(service_down_time=year).service_down_time == year
    with pytest.raises(ConfigError, match=r"\(one year\)"):
        Timings(service_down_time=2 * year)
    assert parse_duration("3650d", "down_for") == 3650 * 86400.0
