"""The contract every store x driver pair must meet (parametrized in conftest)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import anyio
import pytest

from sg import Member, NotFound, Refused, ServiceGroup
from sg.drivers.base import Driver
from sg.model import ServiceEvent, ServiceKey
from sg.store.base import Survey, SurveyQuery
from tests.support.backends import SERVICE_DOWN_TIME
from tests.support.waiting import eventually


def spec(
    binary: str = "sg-compute", topic: str = "compute", host: str = "host-1", version: int = 1
) -> Member:
    return Member(host=host, binary=binary, topic=topic, version=version)


async def beat_once(group: ServiceGroup, s: Member) -> None:
    """One real heartbeat, then nothing: the service is alive now and dies by age."""
    hb = group.heartbeat(s)
    assert await hb.beat_once(), hb.stats.last_error


async def test_joined_service_is_up(group: ServiceGroup) -> None:
    async with group.join("sg-compute", "compute", host="host-1", version=3) as hb:
        assert hb.ready.is_set()
        status = await group.get("host-1", "sg-compute")
        assert status.is_up
        assert status.verdict.reason == "ok"
        assert status.verdict.driver_seen is True
        assert status.service.version == 3
        assert status.service.report_count >= 1
        assert await group.is_up(status.service)


async def test_leaving_reads_down_at_once(group: ServiceGroup) -> None:
    async with group.join("sg-compute", "compute", host="host-1"):
        assert (await group.get("host-1", "sg-compute")).is_up
    status = await group.get("host-1", "sg-compute")
    assert status.verdict.state == "down"
    assert status.verdict.reason == "left"


async def test_leave_then_beat_is_up_again(group: ServiceGroup) -> None:
    async with group.join("sg-compute", "compute", host="host-1") as hb:
        await group.leave(hb.member)
        assert (await group.get("host-1", "sg-compute")).verdict.reason == "left"
        await hb.beat_once()
        assert (await group.get("host-1", "sg-compute")).is_up


async def test_silent_service_goes_stale_after_down_time_not_before(group: ServiceGroup) -> None:
    before_beat = time.monotonic()  # before the stamp: load cannot make the bound fail
    await beat_once(group, spec())
    status = await group.get("host-1", "sg-compute")
    assert status.is_up
    status, _ = await eventually(
        lambda: group.get("host-1", "sg-compute"), lambda s: not s.is_up, SERVICE_DOWN_TIME + 2, "stale"
    )
    # Not before service_down_time has passed since the beat (50 ms for the store's
    # wall clock against this monotonic one).
    assert time.monotonic() - before_beat >= SERVICE_DOWN_TIME - 0.05
    assert status.verdict.reason == "stale"
    assert status.verdict.age is not None
    assert status.verdict.age > SERVICE_DOWN_TIME


async def test_registered_but_never_reported_is_down(group: ServiceGroup) -> None:
    await group.store.register(Member("host-1", "sg-compute", "compute", 1))
    status = await group.get("host-1", "sg-compute")
    assert (status.verdict.state, status.verdict.reason) == ("down", "never_reported")
    assert status.service.updated_at is None


async def test_forced_down_wins_over_fresh_beats(group: ServiceGroup) -> None:
    async with group.join("sg-compute", "compute", host="host-1") as hb:
        await group.set_forced_down(ServiceKey("host-1", "sg-compute"), True)
        await hb.beat_once()
        status = await group.get("host-1", "sg-compute")
        assert (status.verdict.state, status.verdict.reason) == ("down", "forced_down")
        await group.set_forced_down(ServiceKey("host-1", "sg-compute"), False)
        assert (await group.get("host-1", "sg-compute")).is_up


async def test_admin_changes_never_touch_updated_at(group: ServiceGroup) -> None:
    """Nova bug 1420848: disabling or un-forcing a dead service must not revive it."""
    await beat_once(group, spec())
    dead, _ = await eventually(
        lambda: group.get("host-1", "sg-compute"),
        lambda s: s.verdict.reason == "stale",
        SERVICE_DOWN_TIME + 2,
        "stale",
    )
    key = ServiceKey("host-1", "sg-compute")
    await group.set_disabled(key, True, "maintenance")
    await group.set_disabled(key, False)
    await group.set_disabled(key, True, "again")
    await group.set_forced_down(key, True)
    await group.set_forced_down(key, False)
    after = await group.get("host-1", "sg-compute")
    assert after.service.updated_at == dead.service.updated_at
    assert after.service.report_count == dead.service.report_count
    assert (after.verdict.state, after.verdict.reason) == ("down", "stale")
    assert after.service.disabled
    assert after.service.disabled_reason == "again"


async def test_enable_clears_reason(group: ServiceGroup) -> None:
    await beat_once(group, spec())
    key = ServiceKey("host-1", "sg-compute")
    disabled = await group.set_disabled(key, True, "broken disk")
    assert disabled.disabled
    assert disabled.disabled_reason == "broken disk"
    enabled = await group.set_disabled(key, False, "ignored")
    assert not enabled.disabled
    assert enabled.disabled_reason is None


async def test_admin_change_of_missing_service_is_not_found(group: ServiceGroup) -> None:
    key = ServiceKey("nohost", "nobinary")
    with pytest.raises(NotFound):
        await group.set_disabled(key, True, "x")
    with pytest.raises(NotFound):
        await group.set_forced_down(key, True)
    with pytest.raises(NotFound):
        await group.get("nohost", "nobinary")
    with pytest.raises(NotFound):
        await group.delete(key)
    assert await group.list() == []


async def test_list_filters_and_order(group: ServiceGroup) -> None:
    for s in (spec(host="b"), spec(host="a"), spec(binary="sg-sched", topic="scheduler", host="a")):
        await beat_once(group, s)
    everything = await group.list()
    assert [(x.service.host, x.service.binary) for x in everything] == [
        ("a", "sg-compute"),
        ("a", "sg-sched"),
        ("b", "sg-compute"),
    ]
    assert all(x.is_up for x in everything)
    assert [x.service.host for x in await group.list(topic="compute")] == ["a", "b"]
    assert [x.service.binary for x in await group.list(host="a")] == ["sg-compute", "sg-sched"]
    assert [x.service.host for x in await group.list(binary="sg-sched")] == ["a"]
    assert await group.list(topic="compute", host="c") == []


async def test_list_is_constant_round_trips(group: ServiceGroup) -> None:
    """One store query and one driver batch, whatever the number of services."""
    for i in range(40):
        await beat_once(group, spec(host=f"h{i:02d}"))
    calls = {"store": 0, "driver": 0}
    store_survey, driver_members = group.store.survey, group.driver.members

    async def counted_survey(query: SurveyQuery) -> Survey:
        calls["store"] += 1
        return await store_survey(query)

    async def counted_members(services):  # type: ignore[no-untyped-def]
        calls["driver"] += 1
        return await driver_members(services)

    group.store.survey = counted_survey  # type: ignore[method-assign]
    group.driver.members = counted_members  # type: ignore[method-assign]
    statuses = await group.list()
    assert len(statuses) == 40
    assert all(s.is_up for s in statuses)
    assert calls == {"store": 1, "driver": 1}


async def test_delete_refuses_live_service_unless_forced(group: ServiceGroup) -> None:
    async with group.join("sg-compute", "compute", host="host-1") as hb:
        key = ServiceKey("host-1", "sg-compute")
        with pytest.raises(Refused, match="is up"):
            await group.delete(key)
        assert (await group.get("host-1", "sg-compute")).is_up, "a refused delete changed nothing"
        await group.delete(key, force=True)
        with pytest.raises(NotFound):
            await group.get("host-1", "sg-compute")
        if group.driver.name != "db":  # db holds no member: the record, gone above, was all
            membership = await group.driver.members([hb.member])
            assert membership[hb.member.key] is False


async def test_delete_of_dead_service(group: ServiceGroup) -> None:
    async with group.join("sg-compute", "compute", host="host-1"):
        pass
    await group.delete(ServiceKey("host-1", "sg-compute"))
    assert await group.list() == []


async def test_deleted_row_of_live_service_is_recreated(group: ServiceGroup) -> None:
    async with group.join("sg-compute", "compute", host="host-1") as hb:
        await group.delete(ServiceKey("host-1", "sg-compute"), force=True)
        assert await hb.beat_once()
        assert hb.stats.rejoins >= 1
        assert (await group.get("host-1", "sg-compute")).is_up


async def test_min_version(group: ServiceGroup) -> None:
    assert await group.min_version("sg-compute") is None
    await beat_once(group, spec(host="old", version=3))
    await eventually(
        lambda: group.get("old", "sg-compute"), lambda s: not s.is_up, SERVICE_DOWN_TIME + 2, "old stale"
    )
    async with group.join("sg-compute", "compute", host="new", version=5):
        assert await group.min_version("sg-compute") == 3
        assert await group.min_version("sg-compute", only_up=True) == 5
        await group.set_forced_down(ServiceKey("new", "sg-compute"), True)
        assert await group.min_version("sg-compute", only_up=True) is None
    assert await group.min_version("other") is None


async def test_register_updates_topic_and_version_keeps_identity(group: ServiceGroup) -> None:
    first = await group.store.register(Member("host-1", "sg-compute", "compute", 1))
    second = await group.store.register(Member("host-1", "sg-compute", "compute2", 2))
    assert (second.id, second.uuid) == (first.id, first.uuid)
    assert (second.topic, second.version) == ("compute2", 2)
    by_uuid = await group.get_by_uuid(first.uuid)
    assert by_uuid.service.id == first.id
    with pytest.raises(NotFound):
        await group.get_by_uuid("00000000-0000-0000-0000-000000000000")
    with pytest.raises(NotFound):
        await group.get_by_uuid("not-a-uuid")


async def test_reader_clock_does_not_matter(group: ServiceGroup, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ages come from the store's clock: a reader an hour off sees the same verdict."""
    async with group.join("sg-compute", "compute", host="host-1") as hb:
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + 3600)
        status = await group.get("host-1", "sg-compute")
        assert status.is_up
        assert status.verdict.age is not None
        assert abs(status.verdict.age) < SERVICE_DOWN_TIME
        # The heartbeat measures this host's clock against the store's.
        await hb.beat_once()
        assert hb.stats.clock_skew is not None
        assert hb.stats.clock_skew < -3500


async def test_names_are_stored_exactly(group: ServiceGroup) -> None:
    odd = ["a/b", "..", "host with spaces", "ünïcødé-主机", "x" * 255, "%2F", "a:b"]
    for i, name in enumerate(odd):
        await beat_once(group, spec(host=name, binary=f"b{i}", topic=name))
    got = {(s.service.host, s.service.topic) for s in await group.list()}
    assert got == {(n, n) for n in odd}
    for i, name in enumerate(odd):
        assert (await group.get(name, f"b{i}")).is_up


async def test_watch_reports_transitions(group: ServiceGroup) -> None:
    """A snapshot, then one event per change: a new service, a leave, staleness, a removal."""
    seen: list[ServiceEvent] = []
    async with (
        # One service of another topic beats all along: the store is never silent, so a
        # lone staleness reads down (a silent store would read store_recovering).
        group.join("sg-sched", "scheduler", host="host-live"),
        contextlib.aclosing(group.watch(topic="compute", interval=0.05)) as stream,
    ):

        async def expect(host: str, what: str, accept: Callable[[ServiceEvent], bool]) -> ServiceEvent:
            # Events of other services may come between; collect them all.
            with anyio.fail_after(SERVICE_DOWN_TIME + 4):
                async for event in stream:
                    seen.append(event)
                    if event.status.service.host == host and accept(event):
                        return event
            raise AssertionError(f"the watch ended before {what}")

        async with group.join("sg-compute", "compute", host="host-1"):
            first = await expect("host-1", "the snapshot", lambda e: True)
            assert (first.status.is_up, first.previous, first.removed) == (True, None, False)
            await beat_once(group, spec(host="host-2"))  # a new service, alive for one down time
            await beat_once(group, spec(host="host-9", topic="scheduler"))  # another topic
            new = await expect("host-2", "the new service", lambda e: True)
            assert (new.status.verdict.state, new.previous) == ("up", None)
        left = await expect("host-1", "the leave", lambda e: True)
        assert (left.status.verdict.state, left.status.verdict.reason, left.previous) == (
            "down",
            "left",
            "up",
        )
        stale = await expect("host-2", "staleness", lambda e: e.status.verdict.state == "down")
        assert (stale.status.verdict.reason, stale.previous) == ("stale", "up")
        await group.delete(ServiceKey("host-1", "sg-compute"))
        gone = await expect("host-1", "the removal", lambda e: True)
        assert (gone.removed, gone.previous) == (True, "down")
    # Only the watched topic, and exactly one event per change of each service.
    assert {e.status.service.topic for e in seen} == {"compute"}
    by_host = [(e.status.service.host, e.status.verdict.state, e.previous, e.removed) for e in seen]
    assert [e for e in by_host if e[0] == "host-1"] == [
        ("host-1", "up", None, False),
        ("host-1", "down", "up", False),
        ("host-1", "down", "down", True),
    ]
    assert [e for e in by_host if e[0] == "host-2"] == [
        ("host-2", "up", None, False),
        ("host-2", "down", "up", False),
    ]


async def test_leave_marks_the_record_before_removing_the_member(group: ServiceGroup) -> None:
    """Readers see `left`, never a passing `not_joined`, even with a slower store."""
    seen_left_at_driver_leave: list[bool] = []
    async with group.join("sg-compute", "compute", host="host-1"):
        real_leave, real_mark = group.driver.leave, group.store.mark_left

        async def observing_leave(member: Member) -> None:
            record = await group.store.get(member.key)
            seen_left_at_driver_leave.append(record is not None and record.left)
            await real_leave(member)

        async def slower_mark(key: ServiceKey) -> bool:
            await anyio.sleep(0.05)  # store latency, below the ordering grace
            return await real_mark(key)

        group.driver.leave = observing_leave  # type: ignore[method-assign]
        group.store.mark_left = slower_mark  # type: ignore[method-assign]
    assert seen_left_at_driver_leave == [True]
    assert (await group.get("host-1", "sg-compute")).verdict.reason == "left"


async def test_a_hung_store_does_not_keep_the_member(group: ServiceGroup) -> None:
    from sg.backends import LEAVE_ORDER_GRACE

    hb = group.heartbeat(spec())  # beats only when told, so nothing re-joins behind the test
    assert await hb.beat_once()
    assert await hb.beat_once()  # the second beat refreshes: the member is surely held
    hung = anyio.Event()
    driver_left_after: list[float] = []
    real_leave = group.driver.leave

    async def hung_mark(key: ServiceKey) -> bool:
        await hung.wait()
        return True

    async def timed_leave(member: Member) -> None:
        driver_left_after.append(time.monotonic() - started)
        await real_leave(member)

    group.store.mark_left = hung_mark  # type: ignore[method-assign]
    group.driver.leave = timed_leave  # type: ignore[method-assign]
    started = time.monotonic()
    # The store hangs until store_timeout; the driver must not wait for it past the grace.
    with anyio.move_on_after(LEAVE_ORDER_GRACE + 1.0):
        await group.leave(hb.member)
    assert len(driver_left_after) == 1, "the driver's leave was never called"
    # The driver leaves after the grace, not before (the store might still answer) and
    # not much after; 0.5 s of margin for a loaded machine.
    assert LEAVE_ORDER_GRACE - 0.01 <= driver_left_after[0] <= LEAVE_ORDER_GRACE + 0.5
    if group.driver.name != "db":  # db holds nothing to remove
        membership = await group.driver.members([hb.member])
        assert membership[hb.member.key] is False


async def test_driver_meets_the_protocol_and_answers_ping(group: ServiceGroup) -> None:
    assert isinstance(group.driver, Driver)
    with anyio.fail_after(group.timings.driver_timeout):
        await group.driver.ping()
    assert await group.ping() == {"store": None, "driver": None}


async def test_a_failing_gate_holds_the_service_down_and_the_member_leaves_at_once(
    group: ServiceGroup,
) -> None:
    """A health-gated heartbeat, on every driver: a failed check records its reason and
    removes the driver member in the same round; a passing check joins again."""
    failure: str | None = None

    async def gate() -> str | None:
        return failure

    leaves = 0
    real_leave = group.driver.leave

    async def counted_leave(member: Member) -> None:
        nonlocal leaves
        leaves += 1
        await real_leave(member)

    group.driver.leave = counted_leave  # type: ignore[method-assign]
    hb = group.heartbeat(spec(), gate=gate)  # rounds only when told
    key = hb.member.key

    async def held() -> bool:
        return (await group.driver.members([hb.member]))[key]

    assert await hb.round_once()
    assert (await group.get(*key)).is_up
    assert await held()

    failure = "tcp:127.0.0.1:1: Connection refused"
    assert await hb.round_once()
    status = await group.get(*key)
    assert (status.verdict.state, status.verdict.reason, status.verdict.detail) == (
        "down",
        "check_failed",
        failure,
    )
    assert hb.check_failure == failure
    if group.driver.name != "db":  # db holds no member; the record above says it all
        assert await held() is False, "the member must leave in the failing round"
    assert leaves == 1
    assert await hb.round_once()
    assert leaves == 1, "a held service leaves once, not once per round"
    assert (await group.get(*key)).verdict.reason == "check_failed"

    failure = None
    assert await hb.round_once()
    status = await group.get(*key)
    assert status.is_up
    assert status.service.check_failure is None
    assert hb.check_failure is None
    assert await held()


async def test_a_check_failure_outlives_the_stop(group: ServiceGroup) -> None:
    """A service held down by its check and then stopped reads check_failed (with the
    reason), not left: the reason is the more useful of the two, and stays."""

    async def failing() -> str | None:
        return "exec:false: exit status 1"

    hb = group.heartbeat(spec(), gate=failing)
    assert await hb.round_once()
    await hb.leave()
    status = await group.get("host-1", "sg-compute")
    assert status.service.left is True
    assert (status.verdict.state, status.verdict.reason, status.verdict.detail) == (
        "down",
        "check_failed",
        "exec:false: exit status 1",
    )
