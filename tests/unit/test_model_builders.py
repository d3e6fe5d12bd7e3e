"""The fast builders of sg.model build exactly what the dataclasses' own constructors build."""

from __future__ import annotations

import dataclasses
import gc
from datetime import UTC, datetime, timedelta, timezone

import pytest

from sg import model
from sg.errors import InvalidName
from sg.model import (
    MAX_VERSION,
    Service,
    ServiceStatus,
    Verdict,
    collection_deferred,
    mutable_twin,
    service_from_row,
    status_of,
    validate_name,
)
from sg.store.sql import row_to_service, rows_to_services

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


@pytest.fixture(autouse=True)
def _no_name_is_known_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with an empty cache of valid names, so a name it checks is really
    checked (names earlier tests left there would take the cache's shortcut)."""
    monkeypatch.setattr(model, "_VALID_NAMES", set())


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
    for name in ("host", "binary", "topic"):
        validate_name(name, FIELDS[name])
    values = dict(FIELDS, **{field: value})
    with pytest.raises(InvalidName) as fast:
        service_from_row(*(values[name] for name in ORDER))
    with pytest.raises(InvalidName) as slow:
        Service(**values)  # type: ignore[arg-type]
    # The same refusal, naming the same field, value and reason.
    assert (fast.value.field, fast.value.value, fast.value.why) == (field, value, slow.value.why)
    assert str(fast.value) == str(slow.value)


@pytest.mark.parametrize("version", [True, False, 1.0, "3", None])
def test_service_from_row_refuses_a_version_that_is_not_an_int(version: object) -> None:
    # A bool is an int in range, but not a version: the fast path must not wave it through.
    values = dict(FIELDS, version=version)
    with pytest.raises(InvalidName) as info:
        service_from_row(*(values[name] for name in ORDER))
    assert (info.value.field, info.value.value, info.value.why) == ("version", version, "must be an integer")


def test_version_bounds_in_the_builder() -> None:
    values = dict(FIELDS, version=MAX_VERSION)
    assert service_from_row(*(values[name] for name in ORDER)).version == MAX_VERSION
    values["version"] = 0
    assert service_from_row(*(values[name] for name in ORDER)).version == 0
    for version in (MAX_VERSION + 1, -1):
        values["version"] = version
        with pytest.raises(InvalidName) as info:
            service_from_row(*(values[name] for name in ORDER))
        assert (info.value.field, info.value.why) == ("version", f"must be from 0 to {MAX_VERSION}")


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


def _sqlite_row(values: dict[str, object]) -> list[object]:
    """``values`` as SQLite returns them: 0/1 flags and REAL epoch seconds."""
    row = [values[name] for name in ORDER]
    for flag in ("disabled", "forced_down", "left"):
        row[ORDER.index(flag)] = int(bool(values[flag]))
    for stamp in ("created_at", "updated_at"):
        value = values[stamp]
        row[ORDER.index(stamp)] = None if value is None else value.timestamp()  # type: ignore[attr-defined]
    return row


def test_rows_to_services_over_every_row_shape() -> None:
    # A survey's row carries beat_gap (18 columns) or the context too (23); a RETURNING
    # row exactly the 17. asyncpg's types (bool, datetime, UUID) and SQLite's (0/1,
    # epoch seconds, str) give the same Service, and so does a row whose names are new.
    import uuid as uuidlib

    # Every flag and stamp differs from its neighbours somewhere, so none can stand in for another.
    unseen = dict(
        FIELDS,
        host="never-seen-before-host",
        disabled=False,
        left=True,
        forced_down=True,
        updated_at=STAMP + timedelta(seconds=5),
    )
    never = dict(FIELDS, host="never-reported", created_at=STAMP, updated_at=None, age=None)
    rows: list[tuple[object, ...]] = [
        tuple(_sqlite_row(FIELDS)),
        (*_sqlite_row(unseen), 0.5),
        (*_sqlite_row(never), None, 1, 2.0, None, None, 3),
        (*_sqlite_row(FIELDS)[:-1], 2),  # an integral age (SQLite may give one) is a float
        # An aware datetime in another zone is converted to UTC.
        tuple(
            value.astimezone(timezone(timedelta(hours=2))) if isinstance(value, datetime) else value
            for value in (FIELDS[name] for name in ORDER)
        ),
        tuple(
            uuidlib.UUID(str(value)) if name == "uuid" else value
            for name, value in ((name, FIELDS[name]) for name in ORDER)
        ),
    ]
    expected = [
        Service(**values)  # type: ignore[arg-type]
        for values in (FIELDS, unseen, never, dict(FIELDS, age=2.0), FIELDS, FIELDS)
    ]
    # The first time the new names go through the checks, the second time they are
    # known and every row takes the fast path.
    first = rows_to_services(rows)
    services = rows_to_services(rows)
    assert first == expected
    assert services == expected
    for got in services:
        assert type(got) is Service
        assert {type(getattr(got, name)) for name in ("disabled", "forced_down", "left")} == {bool}
        assert type(got.uuid) is str
        assert got.age is None or type(got.age) is float
        assert got.created_at is None or got.created_at.tzinfo is UTC
        assert got.updated_at is None or got.updated_at.tzinfo is UTC
        with pytest.raises(dataclasses.FrozenInstanceError):
            got.left = True  # type: ignore[misc]
    assert services[0].created_at == STAMP
    assert services[2].updated_at is None
    assert services[2].age is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("host", "bad\nhost"), ("binary", ""), ("topic", " t"), ("version", MAX_VERSION + 1), ("version", -1)],
)
def test_rows_to_services_validates_what_it_has_not_seen(field: str, value: object) -> None:
    validate_name("host", FIELDS["host"])
    good = _sqlite_row(FIELDS)
    bad = _sqlite_row(dict(FIELDS, **{field: value}))
    with pytest.raises(InvalidName):
        rows_to_services([tuple(good), tuple(bad)])


def test_a_twin_is_refused_when_the_layouts_differ() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Two:
        a: int
        b: int

    twin = mutable_twin(Two)
    t = object.__new__(twin)
    t.a, t.b = 1, 2
    t.__class__ = Two
    assert t == Two(1, 2)

    # A layout the twin cannot copy (slots from a base class) is refused when the twin
    # is made, at import, never later on a listing's row.
    class Base:
        __slots__ = ("a",)

    @dataclasses.dataclass(frozen=True, slots=True)
    class Sub(Base):
        b: int

    with pytest.raises(TypeError, match="layout"):
        mutable_twin(Sub)


@pytest.mark.parametrize("enabled", [True, False])
def test_collection_deferred_gives_the_collector_back_as_it_was(enabled: bool) -> None:
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        with collection_deferred():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
        with pytest.raises(ValueError, match="boom"), collection_deferred():
            raise ValueError("boom")
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
