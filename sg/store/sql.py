"""SQL shared by the SQL stores: column lists, migrations' shape, row mapping."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sg.model import Service

__all__ = ["COLUMNS", "MAX_CHECK_FAILURE", "SCHEMA_VERSION", "row_to_service", "to_datetime"]

#: The schema version this release writes; stores refuse a newer database.
SCHEMA_VERSION = 2

#: Longest check failure reason kept; longer ones are cut (a command's stderr can be long).
MAX_CHECK_FAILURE = 500

#: Columns of ``services`` in the order every SELECT returns them (``binary`` is a
#: reserved word in PostgreSQL, so it is always quoted).
COLUMNS = (
    'id, uuid, host, "binary", topic, version, disabled, disabled_reason, forced_down, '
    "has_left, report_count, created_at, updated_at, check_failure"
)


def to_datetime(value: object) -> datetime | None:
    """Map a stored timestamp (epoch seconds or a datetime) to an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), tz=UTC)
    raise TypeError(f"unexpected timestamp {value!r}")


def row_to_service(row: Any) -> Service:
    """Build a :class:`Service` from a row holding :data:`COLUMNS` and ``age``."""
    age = row["age"]
    return Service(
        id=int(row["id"]),
        uuid=str(row["uuid"]),
        host=row["host"],
        binary=row["binary"],
        topic=row["topic"],
        version=int(row["version"]),
        disabled=bool(row["disabled"]),
        disabled_reason=row["disabled_reason"],
        forced_down=bool(row["forced_down"]),
        left=bool(row["has_left"]),
        report_count=int(row["report_count"]),
        created_at=to_datetime(row["created_at"]),
        updated_at=to_datetime(row["updated_at"]),
        age=None if age is None else float(age),
        check_failure=row["check_failure"],
    )
