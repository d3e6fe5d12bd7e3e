"""sg/model.py: names and versions validated once, naming the field; the values and
their JSON row."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sg import model
from sg.errors import InvalidName
from sg.model import (
    DEFAULT_ZONE,
    MAX_NAME_LENGTH,
    MAX_TEXT_LENGTH,
    MAX_VERSION,
    Actor,
    Member,
    Service,
    ServiceAction,
    ServiceKey,
    ServiceStatus,
    Verdict,
    escape_text,
    validate_name,
    validate_text,
    validate_version,
)


@pytest.fixture(autouse=True)
def _no_name_is_known_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with an empty cache of valid names, so a name it checks is really
    checked (names earlier tests left there would take the cache's shortcut)."""
    monkeypatch.setattr(model, "_VALID_NAMES", set())


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


# -- free text: the exact field, value and reason of each refusal -----------------------


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("a\x00", "contains a control character '\\x00'"),
        ("\x1fz", "contains a control character '\\x1f'"),
        ("a\x7f", "contains a control character '\\x7f'"),
        ("a\x9f", "contains a control character '\\x9f'"),
        ("a\u2029", "contains a control character '\\u2029'"),
        # The first and last surrogates, and the characters just outside them.
        ("a\ud800", "contains a surrogate (not valid UTF-8) '\\ud800'"),
        ("a\udfff", "contains a surrogate (not valid UTF-8) '\\udfff'"),
    ],
)
def test_bad_free_text_says_exactly_what_and_where(text: str, why: str) -> None:
    with pytest.raises(InvalidName) as info:
        validate_text("why", text)
    assert (info.value.field, info.value.value, info.value.why) == ("why", text, why)
    assert str(info.value) == f"invalid why {text!r}: {why}"


@pytest.mark.parametrize("text", ["\ud7ff", "\ue000", "\x20", "\xa0", "\x7e", "\u2027", "\u202a"])
def test_characters_beside_the_forbidden_ranges_are_text(text: str) -> None:
    assert validate_text("why", text) == text
    assert escape_text(text) == text


def test_free_text_length_is_checked_against_its_limit() -> None:
    assert validate_text("why", "x" * MAX_TEXT_LENGTH) == "x" * MAX_TEXT_LENGTH
    with pytest.raises(InvalidName) as info:
        validate_text("why", "y" * 40 + "x" * MAX_TEXT_LENGTH)
    # The value is cut to its first 32 characters, so a huge body is never echoed.
    assert (info.value.field, info.value.value, info.value.why) == (
        "why",
        "y" * 32 + "...",
        f"longer than {MAX_TEXT_LENGTH} characters",
    )
    assert validate_text("why", "abc", max_length=3) == "abc"
    with pytest.raises(InvalidName) as info:
        validate_text("why", "abcd", max_length=3)
    assert (info.value.value, info.value.why) == ("abcd...", "longer than 3 characters")


def test_free_text_must_be_a_string() -> None:
    with pytest.raises(InvalidName) as info:
        validate_text("why", b"bytes")
    assert (info.value.field, info.value.value, info.value.why) == ("why", b"bytes", "must be a string")


def test_escape_text_shows_every_refused_character_as_its_escape() -> None:
    assert escape_text("") == ""
    assert escape_text("plain é 中") == "plain é 中"
    assert escape_text("a\x00b\x1b[0m\x7f\x85\u2028\u2029\ud800\udfffz") == (
        "a\\x00b\\x1b[0m\\x7f\\x85\\u2028\\u2029\\ud800\\udfffz"
    )
    assert escape_text("\n\t") == "\\n\\t"


# -- the audit row and the cache of valid names ----------------------------------------


def test_service_action_as_dict_is_every_field() -> None:
    at = datetime(2026, 11, 30, 8, 0, 1, 250000, tzinfo=UTC)
    action = ServiceAction(5, "u-5", "h1", "sg-web", "force_down", "alice", "sgctl", "drill", at)
    assert action.as_dict() == {
        "id": 5,
        "uuid": "u-5",
        "host": "h1",
        "binary": "sg-web",
        "action": "force_down",
        "actor": "alice",
        "via": "sgctl",
        "why": "drill",
        "at": "2026-11-30T08:00:01.250000+00:00",
    }
    bare = ServiceAction(6, "u-6", "h2", "sg-api", "delete", "bob", "api", None, None).as_dict()
    assert (bare["why"], bare["at"]) == (None, None)
    assert list(bare) == ["id", "uuid", "host", "binary", "action", "actor", "via", "why", "at"]


def test_actor_validates_its_name_then_its_via() -> None:
    assert Actor("alice", "sgctl").why is None
    for name, via, field in (("", "api", "actor"), ("alice", "", "via"), ("", "", "actor")):
        with pytest.raises(InvalidName) as info:
            Actor(name, via)
        assert info.value.field == field


def test_member_validates_its_zone() -> None:
    with pytest.raises(InvalidName) as info:
        Member("h", "b", "t", zone=" az")
    assert info.value.field == "zone"
    assert Member("h", "b", "t").zone == DEFAULT_ZONE == "internal"


def test_the_cache_of_valid_names_is_bounded_and_takes_only_plain_strings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache: set[str] = set()
    monkeypatch.setattr(model, "_VALID_NAMES", cache)
    monkeypatch.setattr(model, "_VALID_NAMES_MAX", 2)

    class Sneaky(str):
        __slots__ = ()

    assert validate_name("host", Sneaky("sub")) == "sub"
    assert cache == set()  # a subclass is checked every time, never remembered
    for bad in ("", " x"):
        with pytest.raises(InvalidName):
            validate_name("host", bad)
    assert cache == set()  # nor is a refused name
    validate_name("host", "a")
    validate_name("host", "b")
    assert cache == {"a", "b"}
    validate_name("host", "a")  # known: no change
    assert cache == {"a", "b"}
    validate_name("host", "c")  # full: cleared, then the new name kept
    assert cache == {"c"}
