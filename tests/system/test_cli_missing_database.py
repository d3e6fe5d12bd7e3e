"""sgctl never creates the SQLite database or its directory (issue 10, defect 14)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import anyio
import pytest

from sg import Member, ServiceGroup
from tests.support.processes import clean_env, script, sgctl

pytestmark = pytest.mark.slow

COMMANDS = [
    ("list",),
    ("list", "--json"),
    ("show", "h1", "sg-x"),
    ("min-version", "sg-x"),
    ("enable", "h1", "sg-x"),
    ("disable", "h1", "sg-x", "--reason", "r"),
    ("force-down", "h1", "sg-x"),
    ("delete", "h1", "sg-x"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_a_missing_database_is_a_configuration_error_and_is_not_created(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    db = tmp_path / "typo" / "services.db"
    done = sgctl("--store", f"sqlite://{db}", "service", *command)
    assert done.returncode == 78, done.stdout + done.stderr
    assert f"sqlite database '{db}' does not exist" in done.stderr
    assert done.stdout == ""
    assert not db.parent.exists()


def test_watch_on_a_missing_database_exits_78(tmp_path: Path) -> None:
    db = tmp_path / "services.db"
    done = subprocess.run(
        [script("sgctl"), "--store", f"sqlite://{db}", "service", "watch"],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(),
    )
    assert done.returncode == 78, done.stderr
    assert not db.exists()


def test_an_existing_database_is_read_and_changed(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/services.db"

    async def register() -> None:
        async with ServiceGroup.from_urls(url) as group:
            await group.store.register(Member("h1", "sg-x", "t", 3))

    anyio.run(register)
    assert sgctl("--store", url, "service", "min-version", "sg-x").stdout == "3\n"
    assert sgctl("--store", url, "service", "disable", "h1", "sg-x").returncode == 0
    assert "disabled" in sgctl("--store", url, "service", "list").stdout


def test_bad_create_option_is_a_configuration_error(tmp_path: Path) -> None:
    done = sgctl("--store", f"sqlite://{tmp_path}/s.db?create=maybe", "service", "list")
    assert done.returncode == 78
    assert "create must be true or false" in done.stderr
