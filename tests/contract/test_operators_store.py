"""The operators' tools over every store x driver: the audit trail (one transaction with
the change, never written by a heartbeat), zone, enable_new_services and prune."""

from __future__ import annotations

import pytest

from sg import ServiceGroup
from sg.errors import NotFound
from sg.model import NEW_SERVICE_REASON, Actor, Member, ServiceKey
from tests.support.api import beat
from tests.support.backends import SERVICE_DOWN_TIME
from tests.support.waiting import eventually

OPS = Actor("ops-team", "api", None)


async def test_every_admin_change_is_recorded_with_who_what_and_why(group: ServiceGroup) -> None:
    await beat(group, "h1")
    key = ServiceKey("h1", "nova-compute")
    uuid = (await group.get(*key)).service.uuid
    await group.set_disabled(key, True, "rack 4 power", actor=OPS)
    await group.set_forced_down(key, True, actor=Actor("alice", "sgctl", "fencing"))
    await group.set_forced_down(key, False, actor=OPS)
    await group.set_disabled(key, False, actor=Actor("alice", "sgctl", "power back"))
    # Changes without an actor (the library's own callers) leave no row.
    await group.set_disabled(key, True, "quiet")
    for _ in range(3):
        await beat(group, "h1")  # heartbeats never write there

    trail = await group.actions(uuid=uuid)
    assert [(a.action, a.actor, a.via, a.why) for a in trail] == [
        ("disable", "ops-team", "api", "rack 4 power"),
        ("force_down", "alice", "sgctl", "fencing"),
        ("force_up", "ops-team", "api", None),
        ("enable", "alice", "sgctl", "power back"),
    ]
    assert all((a.host, a.binary, a.uuid) == ("h1", "nova-compute", uuid) for a in trail)
    stamps = [a.at for a in trail]
    assert all(s is not None for s in stamps)
    assert stamps == sorted(stamps)  # type: ignore[type-var]
    assert await group.actions(key=key) == trail


async def test_a_deleted_service_keeps_its_trail(group: ServiceGroup) -> None:
    async with group.join("nova-compute", "compute", host="h2"):
        pass  # left: down
    key = ServiceKey("h2", "nova-compute")
    uuid = (await group.get(*key)).service.uuid
    await group.delete(key, actor=Actor("bob", "sgctl", "decommissioned"))
    with pytest.raises(NotFound):
        await group.get(*key)
    [row] = await group.actions(uuid=uuid)
    assert (row.action, row.actor, row.why, row.host) == ("delete", "bob", "decommissioned", "h2")
    # The same host and binary registered again: a new uuid, and the history by key has both.
    await beat(group, "h2")
    assert (await group.get(*key)).service.uuid != uuid
    await group.set_disabled(key, True, "burn-in", actor=OPS)
    assert [a.action for a in await group.actions(key=key)] == ["delete", "disable"]
    assert await group.actions(uuid="not-a-uuid") == []


async def test_zone_and_enable_new_services_on_register(group: ServiceGroup) -> None:
    fresh = Member("h3", "nova-compute", "compute", zone="rack-4", enable_new=False)
    assert await group.heartbeat(fresh).beat_once()
    service = (await group.get("h3", "nova-compute")).service
    assert (service.zone, service.disabled, service.disabled_reason) == ("rack-4", True, NEW_SERVICE_REASON)
    # An operator enables it; the next registration (an agent restart) leaves that alone.
    await group.set_disabled(service.key, False, actor=OPS)
    assert await group.heartbeat(
        Member("h3", "nova-compute", "compute", zone="rack-5", enable_new=False)
    ).beat_once()
    again = (await group.get("h3", "nova-compute")).service
    assert (again.zone, again.disabled, again.disabled_reason) == ("rack-5", False, None)
    # Defaults: zone internal, enabled.
    await beat(group, "h4")
    plain = (await group.get("h4", "nova-compute")).service
    assert (plain.zone, plain.disabled) == ("internal", False)


async def test_prune_takes_only_services_down_longer_than_asked(group: ServiceGroup) -> None:
    async with group.join("nova-compute", "compute", host="gone"):
        pass
    async with group.join("nova-compute", "compute", host="alive") as alive:
        await alive.ready.wait()
        await _prune_gone(group)


async def _prune_gone(group: ServiceGroup) -> None:
    gone = ServiceKey("gone", "nova-compute")

    async def prunable() -> list[str]:
        return [s.service.host for s in await group.prunable(0.3)]

    # Down at once (it left), but not yet for longer than 0.3 s by the store's clock.
    assert [s.service.host for s in await group.prunable(SERVICE_DOWN_TIME * 100)] == []
    await eventually(prunable, lambda hosts: hosts == ["gone"], 5, "gone is prunable")
    results = await group.prune(0.3, actor=Actor("carol", "sgctl", "cleanup"))
    assert [(s.service.host, error) for s, error in results] == [("gone", None)]
    with pytest.raises(NotFound):
        await group.get(*gone)
    assert [(a.action, a.actor, a.why) for a in await group.actions(key=gone)] == [
        ("prune", "carol", "cleanup")
    ]
    assert (await group.get("alive", "nova-compute")).is_up
