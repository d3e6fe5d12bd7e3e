"""Every rule of sg/verdict.py, and their order: the first rule that matches decides."""

from __future__ import annotations

import itertools
from dataclasses import fields, replace

import pytest

import sg.verdict
from sg.model import RECOVERING, Presence, Reason, Service, ServiceStatus, State
from sg.verdict import judge, judge_all, store_unreachable

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


# judge_all's table: every combination of the record's faults, its age around the
# bounds, and the driver's answer, with and without a driver error.
AGES = [None, 0.0, 1.0, DOWN_TIME, -DOWN_TIME, DOWN_TIME + 0.001, -(DOWN_TIME + 0.001), float("nan")]
SEEN: list[Presence] = [True, False, None, RECOVERING]
RECORDS = [
    replace(FRESH, host=f"h{i}", age=age, forced_down=forced, check_failure=failure, left=left)
    for i, (age, forced, failure, left) in enumerate(
        itertools.product(AGES, [False, True], [None, "tcp: refused"], [False, True])
    )
]


def _answers(seen: Presence) -> dict[tuple[str, str], Presence]:
    return {(s.host, s.binary): seen for s in RECORDS}


@pytest.mark.parametrize("error", [None, "zk: timeout"])
@pytest.mark.parametrize("seen", SEEN, ids=repr)
def test_judge_all_is_judge_row_by_row(seen: Presence, error: str | None) -> None:
    answers = _answers(seen)
    statuses, any_down = judge_all(RECORDS, service_down_time=DOWN_TIME, seen=answers.get, driver_error=error)
    expected = [
        ServiceStatus(s, judge(s, service_down_time=DOWN_TIME, driver_seen=seen, driver_error=error))
        for s in RECORDS
    ]
    assert len(statuses) == len(expected)
    for got, want in zip(statuses, expected, strict=True):
        # Field by field (a NaN age is not equal to itself, so compared by repr), and
        # the exact types: the fast path builds real frozen instances.
        assert type(got) is ServiceStatus
        assert type(got.verdict) is type(want.verdict)
        assert got.service is want.service
        assert repr(got.verdict) == repr(want.verdict)
        assert got.is_up is want.is_up
        for f in fields(want.verdict):
            assert type(getattr(got.verdict, f.name)) is type(getattr(want.verdict, f.name))
        if want.verdict.age == want.verdict.age:  # not NaN
            assert got == want
    assert any_down is any(w.verdict.state == "down" for w in expected)


def test_judge_all_reports_no_down_when_all_are_up() -> None:
    up = [r for r in RECORDS if judge(r, service_down_time=DOWN_TIME, driver_seen=True).state == "up"]
    assert len(up) == 5  # ages 0, 1, both bounds and NaN, with nothing wrong in the record
    statuses, any_down = judge_all(up, service_down_time=DOWN_TIME, seen=_answers(True).get)
    assert any_down is False
    assert [s.verdict.state for s in statuses] == ["up"] * len(up)
    unknown, any_down = judge_all(up, service_down_time=DOWN_TIME, seen=_answers(None).get)
    assert any_down is False
    assert {s.verdict.state for s in unknown} == {"unknown"}


def test_judge_all_decides_every_up_without_judge(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fast path covers the whole up branch, the bounds included: a listing of live
    # services never pays for judge().
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("judge() called for an up record")

    up = [r for r in RECORDS if judge(r, service_down_time=DOWN_TIME, driver_seen=True).state == "up"]
    monkeypatch.setattr(sg.verdict, "judge", refuse)
    statuses, any_down = judge_all(up, service_down_time=DOWN_TIME, seen=_answers(True).get)
    assert [s.verdict.age for s in statuses] == [r.age for r in up]
    assert all(s.is_up for s in statuses)
    assert any_down is False
