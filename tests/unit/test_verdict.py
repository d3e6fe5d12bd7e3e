"""Every rule of sg/verdict.py, and their order: the first rule that matches decides."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sg.model import RECOVERING, Presence, Reason, Service, State
from sg.verdict import judge, store_unreachable

DOWN_TIME = 10.0
FRESH = Service(host="h", binary="b", topic="t", age=1.0)

# Each row: what is wrong with the record, the driver's answer, and the verdict.
# A row's record also carries every fault of the rows below it, so each rule is
# shown to win over every later one.
D = "driver down"
ROWS: list[tuple[str, dict[str, object], Presence, str | None, State, Reason]] = [
    (
        "forced down wins over everything",
        {"forced_down": True, "check_failure": "x", "left": True, "age": None},
        None,
        "driver down",
        "down",
        "forced_down",
    ),
    (
        "a failed check wins over left, never reported and an unreachable driver",
        {"check_failure": "tcp: refused", "left": True, "age": None},
        None,
        "driver down",
        "down",
        "check_failed",
    ),
    ("left wins over never reported", {"left": True, "age": None}, None, "driver down", "down", "left"),
    (
        "never reported wins over an unreachable driver",
        {"age": None},
        None,
        "driver down",
        "down",
        "never_reported",
    ),
    (
        "stale wins over an unreachable driver",
        {"age": DOWN_TIME + 0.001},
        None,
        "driver down",
        "down",
        "stale",
    ),
    ("a future stamp beyond the bound is stale", {"age": -(DOWN_TIME + 0.001)}, None, "x", "down", "stale"),
    ("an unreachable driver is unknown", {}, None, "driver down", "unknown", "driver_unreachable"),
    ("a driver that cannot tell is unknown", {}, None, None, "unknown", "driver_unreachable"),
    (
        "an error wins over a stale membership answer",
        {},
        True,
        "driver down",
        "unknown",
        "driver_unreachable",
    ),
    (
        "a member the driver lost in a mass event it knows of",
        {},
        RECOVERING,
        None,
        "unknown",
        "driver_recovering",
    ),
    ("stale wins over a recovering member", {"age": DOWN_TIME + 0.001}, RECOVERING, None, "down", "stale"),
    ("an unreachable driver wins over recovering", {}, RECOVERING, D, "unknown", "driver_unreachable"),
    ("not held by the driver", {}, False, None, "down", "not_joined"),
    ("fresh and held", {}, True, None, "up", "ok"),
    ("exactly at the bound is fresh", {"age": DOWN_TIME}, True, None, "up", "ok"),
    ("a future stamp within the bound is fresh", {"age": -DOWN_TIME}, True, None, "up", "ok"),
]


@pytest.mark.parametrize(
    ("changes", "seen", "error", "state", "reason"),
    [row[1:] for row in ROWS],
    ids=[row[0] for row in ROWS],
)
def test_rule(
    changes: dict[str, object], seen: Presence, error: str | None, state: State, reason: Reason
) -> None:
    service = replace(FRESH, **changes)  # type: ignore[arg-type]
    verdict = judge(service, service_down_time=DOWN_TIME, driver_seen=seen, driver_error=error)
    assert (verdict.state, verdict.reason) == (state, reason)
    assert verdict.age == service.age
    assert verdict.is_up is (state == "up")
    # An unreachable driver's answer is never passed on; every other verdict carries it
    # (a member the driver lost, "recovering", as not held).
    expected = None if reason == "driver_unreachable" else False if seen == RECOVERING else seen
    assert verdict.driver_seen is expected
    expected_detail = {"check_failed": service.check_failure, "driver_unreachable": error}.get(reason)
    assert verdict.detail == expected_detail


def test_details() -> None:
    failed = judge(
        replace(FRESH, check_failure="tcp:db:5432: refused"), service_down_time=DOWN_TIME, driver_seen=False
    )
    assert failed.detail == "tcp:db:5432: refused"
    assert failed.driver_seen is False
    assert failed.age == FRESH.age
    for changes in ({"forced_down": True}, {"left": True}, {"age": DOWN_TIME + 1}, {}):
        down = judge(replace(FRESH, **changes), service_down_time=DOWN_TIME, driver_seen=False)  # type: ignore[arg-type]
        assert down.state == "down"
        assert (down.driver_seen, down.detail) == (False, None)
    unreachable = judge(FRESH, service_down_time=DOWN_TIME, driver_seen=None, driver_error="zk: timeout")
    assert (unreachable.detail, unreachable.driver_seen) == ("zk: timeout", None)
    up = judge(FRESH, service_down_time=DOWN_TIME, driver_seen=True)
    assert (up.detail, up.driver_seen) == (None, True)


def test_a_recovering_member_reads_as_not_held() -> None:
    # Verdict.driver_seen is a plain bool: "recovering" is a member the driver does not hold.
    recovering = judge(FRESH, service_down_time=DOWN_TIME, driver_seen=RECOVERING)
    assert (recovering.driver_seen, recovering.age, recovering.detail) == (False, FRESH.age, None)
    stale = judge(replace(FRESH, age=DOWN_TIME + 1), service_down_time=DOWN_TIME, driver_seen=RECOVERING)
    assert stale.driver_seen is False


def test_store_unreachable_is_unknown_never_up() -> None:
    verdict = store_unreachable("sqlite: locked")
    assert (verdict.state, verdict.reason, verdict.detail, verdict.age) == (
        "unknown",
        "store_unreachable",
        "sqlite: locked",
        None,
    )
    assert not verdict.is_up
