"""sg/model.py: names and versions validated once, naming the field; the values and
their JSON row."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sg.errors import InvalidName
from sg.model import (
    MAX_NAME_LENGTH,
    MAX_VERSION,
    Member,
    Service,
    ServiceKey,
    ServiceStatus,
    Verdict,
    validate_name,
    validate_version,
)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (None, "must be a string"),
        (3, "must be a string"),
        ("", "must not be empty"),
        ("x" * (MAX_NAME_LENGTH + 1), f"longer than {MAX_NAME_LENGTH} characters"),
        (" a", "has leading or trailing white space"),
        ("a\t", "has leading or trailing white space"),
        ("a\x00b", "contains control character '\\x00'"),
        ("a\x7fb", "contains control character '\\x7f'"),
        ("a\u2028b", "contains control character '\\u2028'"),
    ],
)
def test_a_bad_name_is_refused_naming_the_field_and_why(value: object, why: str) -> None:
    with pytest.raises(InvalidName) as info:
        validate_name("topic", value)
    assert (info.value.field, info.value.value, info.value.why) == ("topic", value, why)
    assert str(info.value) == f"invalid topic {value!r}: {why}"


def test_names_at_the_limits_pass() -> None:
    assert validate_name("host", "x" * MAX_NAME_LENGTH) == "x" * MAX_NAME_LENGTH
    assert validate_name("host", "a") == "a"
    assert validate_name("host", "a b/..:%") == "a b/..:%"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (True, "must be an integer"),
        (1.0, "must be an integer"),
        ("1", "must be an integer"),
        (-1, f"must be from 0 to {MAX_VERSION}"),
        (MAX_VERSION + 1, f"must be from 0 to {MAX_VERSION}"),
    ],
)
def test_a_bad_version_is_refused(value: object, why: str) -> None:
    with pytest.raises(InvalidName) as info:
        validate_version(value)
    assert (info.value.field, info.value.value, info.value.why) == ("version", value, why)


def test_versions_at_the_limits_pass() -> None:
    assert validate_version(0) == 0
    assert validate_version(MAX_VERSION) == MAX_VERSION


@pytest.mark.parametrize("field", ["host", "binary", "topic", "version"])
def test_member_and_service_validate_every_field(field: str) -> None:
    good: dict[str, object] = {"host": "h", "binary": "b", "topic": "t", "version": 1}
    bad = {**good, field: -1 if field == "version" else ""}
    for cls in (Member, Service):
        with pytest.raises(InvalidName) as info:
            cls(**bad)  # type: ignore[arg-type]
        assert info.value.field == field


def test_service_key_of_validates_host_then_binary() -> None:
    assert ServiceKey.of("h", "b") == ServiceKey("h", "b")
    for host, binary, field in (("", "b", "host"), ("h", "", "binary"), ("", "", "host")):
        with pytest.raises(InvalidName) as info:
            ServiceKey.of(host, binary)
        assert info.value.field == field


def test_keys_and_members_of_a_record() -> None:
    service = Service("h", "b", "t", version=7)
    assert service.key == ServiceKey("h", "b")
    assert service.member == Member("h", "b", "t", 7)
    assert Member("h", "b", "t").key == ServiceKey("h", "b")


@pytest.mark.parametrize(("state", "up"), [("up", True), ("down", False), ("unknown", False)])
def test_status_is_up_only_for_up(state: str, up: bool) -> None:
    status = ServiceStatus(Service("h", "b", "t"), Verdict(state, "ok"))  # type: ignore[arg-type]
    assert status.is_up is up
    assert status.verdict.is_up is up


def test_as_dict_is_every_field_of_the_record_and_the_verdict() -> None:
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    updated = datetime(2026, 1, 2, 3, 4, 6, 500000, tzinfo=UTC)
    service = Service(
        host="h1",
        binary="sg-web",
        topic="web",
        id=42,
        uuid="u-42",
        version=3,
        disabled=True,
        disabled_reason="maintenance",
        forced_down=True,
        left=True,
        report_count=9,
        created_at=created,
        updated_at=updated,
        age=1.23456,
        check_failure="tcp: refused",
        driver="zookeeper",
        zone="az-2",
    )
    verdict = Verdict("down", "forced_down", 1.23456, False, "why")
    assert ServiceStatus(service, verdict).as_dict() == {
        "id": 42,
        "uuid": "u-42",
        "host": "h1",
        "binary": "sg-web",
        "topic": "web",
        "zone": "az-2",
        "status": "disabled",
        "state": "down",
        "reason": "forced_down",
        "age": 1.235,
        "updated_at": "2026-01-02T03:04:06.500000+00:00",
        "created_at": "2026-01-02T03:04:05+00:00",
        "disabled": True,
        "disabled_reason": "maintenance",
        "forced_down": True,
        "left": True,
        "check_failure": "tcp: refused",
        "driver": "zookeeper",
        "version": 3,
        "report_count": 9,
        "driver_seen": False,
        "detail": "why",
    }
    fresh = ServiceStatus(Service("h1", "sg-web", "web"), Verdict("down", "never_reported"))
    row = fresh.as_dict()
    assert (row["status"], row["age"], row["updated_at"], row["created_at"]) == ("enabled", None, None, None)
    assert (row["driver_seen"], row["detail"], row["disabled"]) == (None, None, False)
