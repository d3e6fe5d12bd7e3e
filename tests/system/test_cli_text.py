"""sgctl applies the model's free-text rule and never prints a control character raw
(issue 10, defect 12)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import anyio
import pytest

from sg import Member, ServiceGroup
from tests.support.processes import sgctl

pytestmark = pytest.mark.slow


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = f"sqlite://{tmp_path}/services.db"

    async def register() -> None:
        async with ServiceGroup.from_urls(url) as group:
            await group.store.register(Member("h1", "sg-x", "t"))

    anyio.run(register)
    return url


@pytest.mark.parametrize(
    ("reason", "why"),
    [
        ("\x1b[2J\x1b]0;owned\x07", "control character"),
        ("x" * 100_000, "longer than 255"),
        (os.fsdecode(b"bad \xff byte"), "surrogate"),  # what argv decodes $'\xff' to
    ],
)
def test_disable_refuses_bad_reason_with_usage_error(store: str, reason: str, why: str) -> None:
    done = sgctl("--store", store, "service", "disable", "h1", "sg-x", "--reason", reason)
    assert done.returncode == 2, done.stderr
    assert "disabled_reason" in done.stderr
    assert why in done.stderr
    assert "Traceback" not in done.stderr
    assert sgctl("--store", store, "service", "show", "h1", "sg-x").stdout.count("enabled") >= 1


def test_show_escapes_control_characters_stored_around_the_rule(store: str, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "services.db") as db:
        db.execute("UPDATE services SET disabled = 1, disabled_reason = ?", ("\x1b[31mred\x1b[0m",))
    done = sgctl("--store", store, "service", "show", "h1", "sg-x")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout
    assert "\\x1b[31mred" in done.stdout


def test_printable_reason_is_kept(store: str) -> None:
    done = sgctl("--store", store, "service", "disable", "h1", "sg-x", "--reason", "mise à jour")
    assert done.returncode == 0, done.stderr
    assert "mise à jour" in sgctl("--store", store, "service", "show", "h1", "sg-x").stdout
