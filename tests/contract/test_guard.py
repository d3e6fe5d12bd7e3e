"""The fleet guard on every store x driver: a silent store reads unknown, a lone death down.

The store's silence is made the simplest way there is: nobody beats. To the store that
is what an outage looks like from the inside (no stamp lands), and its context
(newest stamp, beats resuming after a gap) is read in the same query as the records.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from sg import Member, ServiceGroup
from sg.guard import recovery_window
from tests.support.waiting import eventually

INTERVAL = 0.5
DOWN = 2.0
#: Room for a loaded machine on top of a bound.
MARGIN = 1.5


@pytest.fixture
async def fleet(store_url: str, driver_url: str) -> AsyncIterator[ServiceGroup]:
    async with ServiceGroup.from_urls(
        store_url, driver_url, report_interval=INTERVAL, service_down_time=DOWN
    ) as group:
        yield group


def member(i: int) -> Member:
    return Member(f"h{i}", "sg-compute", "compute")


async def states(group: ServiceGroup) -> dict[str, str]:
    return {s.service.host: f"{s.verdict.state}/{s.verdict.reason}" for s in await group.list()}


async def test_a_silent_store_reads_unknown_then_beats_resume(fleet: ServiceGroup) -> None:
    for i in range(4):
        assert await fleet.heartbeat(member(i)).beat_once()
    # Nobody beats for longer than the down time: the whole store is silent.
    silent, _ = await eventually(
        lambda: states(fleet),
        lambda s: set(s.values()) == {"unknown/store_recovering"},
        DOWN + MARGIN,
        "silent",
    )
    assert len(silent) == 4
    assert not any(s.is_up for s in await fleet.list())
    single = await fleet.verdict(member(0))
    assert (single.state, single.reason) == ("unknown", "store_recovering")
    # One beat lands: the store is back. The others fell silent with it, so they get
    # one recovery window before they may read down.
    resumed_at = anyio.current_time()
    assert await fleet.heartbeat(member(0)).beat_once()
    now = await states(fleet)
    assert now["h0"] == "up/ok"
    if anyio.current_time() - resumed_at < recovery_window(fleet.timings):
        assert {now[f"h{i}"] for i in (1, 2, 3)} == {"unknown/store_recovering"}, now
    # They never beat: after the window they are a mass that went stale together, and
    # that too ends on its own, one down time after they turned stale.
    await eventually(
        lambda: states(fleet),
        lambda s: {s[f"h{i}"] for i in (1, 2, 3)} == {"down/stale"},
        2 * DOWN + recovery_window(fleet.timings) + MARGIN,
        "down at last",
    )


async def test_a_lone_death_in_a_live_fleet_is_down_within_the_bound(fleet: ServiceGroup) -> None:
    async with anyio.create_task_group() as tg:
        for i in range(1, 5):
            await tg.start(fleet.heartbeat(member(i)).run)
        assert await fleet.heartbeat(member(0)).beat_once()  # then h0 dies silently
        died = anyio.current_time()
        status, _ = await eventually(
            lambda: fleet.get("h0", "sg-compute"), lambda s: s.verdict.state == "down", DOWN + MARGIN, "down"
        )
        took = anyio.current_time() - died
        # memcached may expire the key (TTL = the down time) up to a second before the
        # record turns stale: either reason is a confident down.
        assert status.verdict.reason in ("stale", "not_joined")
        assert took <= DOWN + MARGIN, took
        # Never unknown on the way: a lone death is no fleet event.
        assert {(await fleet.get(f"h{i}", "sg-compute")).verdict.state for i in range(1, 5)} == {"up"}
        tg.cancel_scope.cancel()
