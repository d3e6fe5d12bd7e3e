"""Changing both admin flags is one store write (issue 10, defect 16).

A database trigger that refuses any change of ``forced_down`` stands in for a failure
between two writes: with one statement the whole change is refused, never half applied.
"""

from __future__ import annotations

import sqlite3
from urllib.parse import urlsplit

import asyncpg
import pytest

from sg import Member, ServiceGroup, Settings
from sg.api.app import create_app
from sg.errors import NotFound
from sg.model import ServiceKey
from tests.support.api import AUTH, api_settings, client_for, uuid_of

KEY = ServiceKey("c1", "nova-compute")

_SQLITE_TRIGGER = """
CREATE TRIGGER refuse_forced_down BEFORE UPDATE OF forced_down ON services
WHEN NEW.forced_down != OLD.forced_down BEGIN SELECT RAISE(ABORT, 'injected failure'); END
"""
_PG_TRIGGER = """
CREATE FUNCTION refuse_forced_down() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql;
CREATE TRIGGER refuse_forced_down BEFORE UPDATE ON services FOR EACH ROW
WHEN (NEW.forced_down IS DISTINCT FROM OLD.forced_down) EXECUTE FUNCTION refuse_forced_down();
"""


async def refuse_forced_down_changes(store_url: str) -> None:
    """Install a trigger that makes every change of ``forced_down`` fail."""
    if store_url.startswith("sqlite"):
        with sqlite3.connect(urlsplit(store_url).path) as db:
            db.executescript(_SQLITE_TRIGGER)
        return
    conn = await asyncpg.connect(store_url)
    try:
        await conn.execute(_PG_TRIGGER)
    finally:
        await conn.close()


async def test_update_admin_changes_both_flags_and_keeps_the_rest(store_url: str) -> None:
    async with ServiceGroup.from_urls(store_url, "db://") as group:
        await group.store.register(Member(*KEY, "compute"))
        before = await group.store.get(KEY)
        assert before is not None
        both = await group.update_admin(KEY, disabled=True, reason="maint", forced_down=True)
        assert (both.disabled, both.disabled_reason, both.forced_down) == (True, "maint", True)
        only_forced = await group.update_admin(KEY, forced_down=False)
        assert (only_forced.disabled, only_forced.disabled_reason, only_forced.forced_down) == (
            True,
            "maint",
            False,
        )
        enabled = await group.update_admin(KEY, disabled=False, reason="ignored")
        assert (enabled.disabled, enabled.disabled_reason, enabled.forced_down) == (False, None, False)
        assert enabled.updated_at == before.updated_at
        # The old single-flag methods still work.
        assert (await group.set_forced_down(KEY, True)).forced_down
        assert (await group.set_disabled(KEY, True, "r")).disabled_reason == "r"
        with pytest.raises(NotFound):
            await group.update_admin(ServiceKey("nope", "nova-compute"), forced_down=True)


async def test_update_admin_on_the_memory_store() -> None:
    async with ServiceGroup.from_urls("memory://admin16", "memory://admin16") as group:
        await group.store.register(Member(*KEY, "compute"))
        both = await group.update_admin(KEY, disabled=True, reason="maint", forced_down=True)
        assert (both.disabled, both.disabled_reason, both.forced_down) == (True, "maint", True)
        kept = await group.update_admin(KEY, forced_down=False)
        assert (kept.disabled, kept.disabled_reason, kept.forced_down) == (True, "maint", False)


async def test_put_status_and_forced_down_is_all_or_nothing(store_url: str) -> None:
    async with ServiceGroup.from_urls(store_url, "db://") as group:
        await group.store.register(Member(*KEY, "compute"))
        await refuse_forced_down_changes(store_url)
        uuid = await uuid_of(group, *KEY)
        async with client_for(create_app(Settings(), api_settings(), group=group)) as client:
            r = await client.put(
                f"/v1/services/{uuid}",
                json={"status": "disabled", "disabled_reason": "maint", "forced_down": True},
                headers=AUTH,
            )
        assert r.status_code == 503, r.text
        after = await group.store.get(KEY)
        assert after is not None
        # Two writes left the service disabled although the request failed.
        assert (after.disabled, after.disabled_reason, after.forced_down) == (False, None, False)
