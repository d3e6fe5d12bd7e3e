"""sgctl in process (``sg.cli.main``) on a SQLite store: list filters, the full --json
field set, delete of up and unknown services, and exit 69 for an unreachable driver."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from sg import Member, ServiceGroup
from sg.cli import EXIT_NOT_FOUND, EXIT_OK, EXIT_UNAVAILABLE, main
from sg.model import Service, ServiceStatus, Verdict
from sg.testing.servers import free_port

TIMINGS = {"report_interval": 2.0, "service_down_time": 30.0}
SERVICES = [
    Member("c1", "nova-compute", "compute", 3),
    Member("c2", "nova-compute", "compute", 4),
    Member("c1", "nova-scheduler", "scheduler", 5),
]


def write_config(tmp_path: Path, driver: str) -> Path:
    config = tmp_path / "sg.toml"
    config.write_text(
        f'store = "sqlite://{tmp_path}/sg.db"\ndriver = "{driver}"\n'
        f"report_interval = {TIMINGS['report_interval']}\n"
        f"service_down_time = {TIMINGS['service_down_time']}\n"
        "driver_timeout = 1.0\n"
    )
    return config


@pytest.fixture
def config(tmp_path: Path) -> Path:
    async def beat_all() -> None:
        async with ServiceGroup.from_urls(f"sqlite://{tmp_path}/sg.db", "db://", **TIMINGS) as group:
            for member in SERVICES:
                assert await group.heartbeat(member).beat_once()

    anyio.run(beat_all)
    return write_config(tmp_path, "db://")


def sgctl(config: Path, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    status = main(["--config", str(config), *args], out=out)
    return status, out.getvalue()


def listed(config: Path, *args: str) -> list[dict[str, Any]]:
    status, out = sgctl(config, "service", "list", "--json", *args)
    assert status == EXIT_OK
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


def test_list_filters_by_topic_binary_and_host(config: Path) -> None:
    def keys(*args: str) -> list[tuple[str, str]]:
        return [(r["host"], r["binary"]) for r in listed(config, *args)]

    assert len(keys()) == 3
    assert sorted(keys("--topic", "compute")) == [("c1", "nova-compute"), ("c2", "nova-compute")]
    assert keys("--binary", "nova-scheduler") == [("c1", "nova-scheduler")]
    assert sorted(keys("--host", "c1")) == [("c1", "nova-compute"), ("c1", "nova-scheduler")]
    assert keys("--host", "c1", "--topic", "compute") == [("c1", "nova-compute")]
    assert keys("--topic", "nowhere") == []


def test_json_rows_carry_every_field(config: Path) -> None:
    (row,) = listed(config, "--host", "c2")
    expected = set(ServiceStatus(Service("h", "b", "t"), Verdict("down", "never_reported")).as_dict())
    assert set(row) == expected
    assert (row["host"], row["binary"], row["topic"], row["version"]) == ("c2", "nova-compute", "compute", 4)
    assert (row["state"], row["reason"], row["status"], row["driver_seen"]) == ("up", "ok", "enabled", True)
    assert row["report_count"] == 1
    assert 0 <= row["age"] < TIMINGS["service_down_time"]
    assert row["updated_at"] is not None
    assert row["created_at"] is not None
    assert (row["disabled"], row["forced_down"], row["left"], row["check_failure"]) == (
        False,
        False,
        False,
        None,
    )
    status, out = sgctl(config, "service", "show", "c2", "nova-compute", "--json")
    assert status == EXIT_OK
    assert set(json.loads(out)) == expected


def test_delete_refuses_up_and_unknown_unless_forced(config: Path, tmp_path: Path) -> None:
    status, _ = sgctl(config, "service", "delete", "c1", "nova-compute")
    assert status == EXIT_NOT_FOUND  # refused: it is up
    assert len(listed(config)) == 3
    # The same store through a driver that cannot be reached: every service is unknown.
    unreachable = write_config(tmp_path, f"memcached://127.0.0.1:{free_port()}")
    rows = listed(unreachable)
    assert {(r["state"], r["reason"]) for r in rows} == {("unknown", "driver_unreachable")}
    status, _ = sgctl(unreachable, "service", "delete", "c2", "nova-compute")
    assert status == EXIT_NOT_FOUND  # refused: unknown may be alive
    assert len(listed(config)) == 3
    status, _ = sgctl(config, "service", "delete", "--force", "c1", "nova-compute")
    assert status == EXIT_OK
    assert sorted((r["host"], r["binary"]) for r in listed(config)) == [
        ("c1", "nova-scheduler"),
        ("c2", "nova-compute"),
    ]
    status, _ = sgctl(config, "service", "delete", "--force", "c1", "nova-compute")
    assert status == EXIT_NOT_FOUND


def test_an_unreachable_driver_exits_69_where_an_answer_needs_it(config: Path, tmp_path: Path) -> None:
    unreachable = write_config(tmp_path, f"memcached://127.0.0.1:{free_port()}")
    status, _ = sgctl(unreachable, "service", "min-version", "nova-compute", "--only-up")
    assert status == EXIT_UNAVAILABLE
    status, out = sgctl(unreachable, "service", "min-version", "nova-compute")
    assert (status, out.strip()) == (EXIT_OK, "3")  # the store alone answers this one
