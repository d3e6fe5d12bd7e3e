"""The fast builders of sg.model build exactly what the dataclasses' own constructors build."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from sg.errors import InvalidName
from sg.model import (
    MAX_VERSION,
    Service,
    ServiceStatus,
    Verdict,
    service_from_row,
    status_of,
    validate_name,
)
from sg.store.sql import row_to_service

STAMP = datetime(2026, 11, 30, 4, 0, 0, 123456, tzinfo=UTC)
FIELDS = dict(
    id=7,
    uuid="0b5f7a3e-6f7e-4c1e-9a8e-2f0f7f1d2c3b",
    host="compute-01",
    binary="nova-compute",
    topic="compute",
    version=3,
    disabled=True,
    disabled_reason="maintenance",
    forced_down=False,
    left=True,
    report_count=42,
    created_at=STAMP,
    updated_at=STAMP,
    check_failure="pidfile: gone",
    driver="zookeeper",
    zone="az-1",
    age=1.25,
)
#: The store's column order (sg.store.sql.COLUMNS, then age).
ORDER = [
    "id",
    "uuid",
    "host",
    "binary",
    "topic",
    "version",
    "disabled",
    "disabled_reason",
    "forced_down",
    "left",
    "report_count",
    "created_at",
    "updated_at",
    "check_failure",
    "driver",
    "zone",
    "age",
]


def test_service_from_row_equals_the_dataclass() -> None:
    fast = service_from_row(*(FIELDS[name] for name in ORDER))
    assert fast == Service(**FIELDS)  # type: ignore[arg-type]
    assert dataclasses.asdict(fast) == FIELDS
    assert {f.name for f in dataclasses.fields(Service)} == set(ORDER), "a new field needs the builder too"
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.host = "x"  # type: ignore[misc]


def test_row_to_service_maps_store_types() -> None:
    # SQLite gives 0/1 flags and epoch seconds; the result is the same Service.
    row = [FIELDS[name] for name in ORDER]
    row[ORDER.index("disabled")] = 1
    row[ORDER.index("forced_down")] = 0
    row[ORDER.index("left")] = 1
    row[ORDER.index("created_at")] = row[ORDER.index("updated_at")] = STAMP.timestamp()
    assert row_to_service(tuple(row)) == Service(**FIELDS)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [("host", ""), ("binary", " padded"), ("topic", "a\nb"), ("host", "x" * 300), ("version", -1)],
)
def test_service_from_row_still_validates(field: str, value: object) -> None:
    # The names of FIELDS are in the cache of valid names; a bad one beside them is not.
    validate_name("host", FIELDS["host"])
    values = dict(FIELDS, **{field: value})
    with pytest.raises(InvalidName):
        service_from_row(*(values[name] for name in ORDER))
    with pytest.raises(InvalidName):
        Service(**values)  # type: ignore[arg-type]


def test_version_bounds_in_the_builder() -> None:
    values = dict(FIELDS, version=MAX_VERSION)
    assert service_from_row(*(values[name] for name in ORDER)).version == MAX_VERSION
    values["version"] = MAX_VERSION + 1
    with pytest.raises(InvalidName):
        service_from_row(*(values[name] for name in ORDER))


def test_cached_names_are_checked_once_but_still_typed() -> None:
    assert validate_name("host", "cached-host") == "cached-host"
    assert validate_name("host", "cached-host") == "cached-host"

    class Sneaky(str):
        pass

    # A str subclass never takes the cache's word for it.
    assert validate_name("host", Sneaky("cached-host")) == "cached-host"
    with pytest.raises(InvalidName):
        validate_name("host", ["cached-host"])


@pytest.mark.parametrize("state", ["up", "down", "unknown"])
def test_status_of_equals_the_dataclass(state: str) -> None:
    service = Service(**FIELDS)  # type: ignore[arg-type]
    verdict = Verdict(state, "ok")  # type: ignore[arg-type]
    assert status_of(service, verdict) == ServiceStatus(service, verdict)
    assert status_of(service, verdict).is_up is (state == "up")
