"""sg/heartbeat.py on the in-process memory backends: outage logging with backoff,
recovery, re-joins, clock skew, the round's bookkeeping and the run loop."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

from sg import ServiceGroup
from sg.errors import BackendUnavailable, ConfigError
from sg.heartbeat import Heartbeat
from sg.model import Member
from sg.store.base import BeatResult
from tests.support.waiting import eventually

_names = itertools.count()
MEMBER = Member("h1", "sg-web", "web", 2)
INTERVAL = 0.2
DOWN_TIME = 1.0


@pytest.fixture
async def group() -> AsyncIterator[ServiceGroup]:
    name = f"hb{next(_names)}"
    async with ServiceGroup.from_urls(
        f"memory://{name}", f"memory://{name}", report_interval=INTERVAL, service_down_time=DOWN_TIME
    ) as g:
        yield g


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


async def test_store_outage_is_logged_with_backoff_and_recovery_once(
    group: ServiceGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    hb = group.heartbeat(MEMBER)
    assert await hb.beat_once()

    async def down(key: object) -> BeatResult | None:
        raise BackendUnavailable("memory", "store is down")

    monkeypatch.setattr(group.store, "beat", down)
    with capture_logs() as logs:
        for _ in range(9):
            assert not await hb.beat_once()
    failed = events(logs, "beat_failed")
    # Logged at the 1st, 2nd, 4th and 8th failure of the outage, not once per beat.
    assert [e["failures"] for e in failed] == [1, 2, 4, 8]
    assert {e["backend"] for e in failed} == {"store"}
    assert all("store is down" in e["error"] for e in failed)
    assert all(e["log_level"] == "warning" for e in failed)
    assert failed[-1]["outage_s"] >= failed[0]["outage_s"] >= 0
    assert hb.stats.failures == 9
    assert hb.stats.beats == 1
    assert hb.stats.last_error is not None
    assert hb.stats.last_error.startswith("store: ")
    assert "store is down" in hb.stats.last_error
    assert hb.stats.outages["store"].failures == 9
    assert "driver" not in hb.stats.outages

    monkeypatch.undo()
    with capture_logs() as logs:
        assert await hb.beat_once()
        assert await hb.beat_once()
    recovered = events(logs, "beat_recovered")
    assert len(recovered) == 1
    assert (recovered[0]["backend"], recovered[0]["failures"]) == ("store", 9)
    assert recovered[0]["log_level"] == "info"
    assert recovered[0]["outage_s"] >= 0
    assert hb.stats.outages == {}
    assert hb.stats.last_error is None
    assert hb.stats.beats == 3


async def test_a_crashing_step_is_a_failed_beat_not_a_dead_loop(
    group: ServiceGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    hb = group.heartbeat(MEMBER)

    async def bug(member: object) -> bool:
        raise ZeroDivisionError("oops")

    assert await hb.beat_once()
    monkeypatch.setattr(group.driver, "refresh", bug)
    with capture_logs() as logs:
        assert not await hb.beat_once()
    assert hb.stats.last_error == "driver: ZeroDivisionError: oops"
    assert [e["backend"] for e in events(logs, "beat_crashed")] == ["driver"]
    assert hb.stats.outages["driver"].failures == 1


async def test_ready_and_stats_after_the_first_good_beat(group: ServiceGroup) -> None:
    hb = group.heartbeat(MEMBER)
    assert not hb.ready.is_set()
    assert hb.stats.last_success_age() is None
    assert hb.last_good is None
    before = time.monotonic()
    assert await hb.beat_once()
    assert hb.ready.is_set()
    assert hb.stats.beats == 1
    assert hb.stats.last_latency is not None
    assert 0 <= hb.stats.last_latency <= time.monotonic() - before
    assert hb.last_good == hb.stats.last_success
    age = hb.stats.last_success_age()
    assert age is not None
    assert 0 <= age <= time.monotonic() - before
    assert hb.key == MEMBER.key
    record = await group.store.get(MEMBER.key)
    assert record is not None
    assert (record.topic, record.version, record.report_count) == ("web", 2, 1)


async def test_rejoins_are_counted_and_logged_with_the_backend(group: ServiceGroup) -> None:
    hb = group.heartbeat(MEMBER)
    assert await hb.beat_once()
    await group.store.delete(MEMBER.key)
    with capture_logs() as logs:
        assert await hb.beat_once()
    assert hb.stats.rejoins == 1
    (rejoined,) = events(logs, "service_rejoined")
    assert (rejoined["backend"], rejoined["why"], rejoined["rejoins"]) == ("store", "record missing", 1)
    assert rejoined["log_level"] == "warning"
    await group.driver.leave(MEMBER)
    with capture_logs() as logs:
        assert await hb.beat_once()
    (rejoined,) = events(logs, "service_rejoined")
    assert (rejoined["backend"], rejoined["why"], rejoined["rejoins"]) == ("memory", "member missing", 2)
    with capture_logs() as logs:
        assert await hb.beat_once()
    assert events(logs, "service_rejoined") == []
    assert hb.stats.rejoins == 2


async def test_clock_skew_warns_once_and_resolves(
    group: ServiceGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    hb = group.heartbeat(MEMBER)
    limit = group.timings.max_clock_skew
    real_beat = group.store.beat
    offset = 0.0

    async def skewed(key: Any) -> BeatResult | None:
        result = await real_beat(key)
        return None if result is None else replace(result, store_time=result.store_time + offset)

    monkeypatch.setattr(group.store, "beat", skewed)
    with capture_logs() as logs:
        assert await hb.beat_once()
        assert hb.stats.clock_skew is not None
        assert abs(hb.stats.clock_skew) < 0.5
        offset = limit + 5.0
        assert await hb.beat_once()
        assert await hb.beat_once()
        assert hb.stats.clock_skew is not None
        assert limit + 4.0 < hb.stats.clock_skew < limit + 6.0
        offset = limit - 0.5  # within the limit again
        assert await hb.beat_once()
        offset = -(limit + 5.0)  # behind, beyond the limit
        assert await hb.beat_once()
    warned = events(logs, "clock_skew")
    assert len(warned) == 2, "once per episode, not once per beat"
    assert limit + 4.0 < warned[0]["skew_s"] < limit + 6.0
    assert warned[0]["limit_s"] == limit
    assert warned[0]["log_level"] == "warning"
    assert -(limit + 6.0) < warned[1]["skew_s"] < -(limit + 4.0)
    resolved = events(logs, "clock_skew_resolved")
    assert len(resolved) == 1
    assert resolved[0]["limit_s"] == limit


async def test_set_report_interval_validates_and_wakes(group: ServiceGroup) -> None:
    hb = group.heartbeat(MEMBER)
    assert hb.report_interval == INTERVAL
    hb.set_report_interval(0.3)
    assert hb.report_interval == 0.3
    hb.set_report_interval(None)
    assert hb.report_interval == INTERVAL
    with pytest.raises(ConfigError, match="report_interval"):
        hb.set_report_interval(DOWN_TIME)  # the down time must stay 2.5x the interval
    with pytest.raises(ConfigError, match="report_interval"):
        group.heartbeat(MEMBER, interval=DOWN_TIME)
    assert group.heartbeat(MEMBER, interval=0.25).report_interval == 0.25


async def test_run_beats_every_interval_and_leaves_when_cancelled(group: ServiceGroup) -> None:
    hb = group.heartbeat(MEMBER)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            started = await tg.start(hb.run)
            assert started is hb
            began = time.monotonic()
            # Five more beats at 0.2 s: at least 0.8 s (jitter shortens a wait by <= 10 %).
            await eventually(lambda: _beats(hb), lambda n: n >= 6, 5 * INTERVAL + 3.0, "six beats")
            took = time.monotonic() - began
            assert took >= 5 * INTERVAL * 0.9 - 0.05
            # poke() starts a round at once instead of at the end of the interval.
            hb.set_report_interval(DOWN_TIME / 2.5)  # 0.4 s
            count = hb.stats.beats
            await eventually(lambda: _beats(hb), lambda n: n > count, 0.3, "a round on poke")
            tg.cancel_scope.cancel()
    status = await group.get(*MEMBER.key)
    assert (status.verdict.state, status.verdict.reason) == ("down", "left")
    assert len(events(logs, "service_left")) == 1
    assert (await group.driver.members([MEMBER]))[MEMBER.key] is False


async def test_a_failed_leave_is_logged_not_raised(
    group: ServiceGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    hb = group.heartbeat(MEMBER)
    assert await hb.beat_once()

    async def down(key: Any) -> bool:
        raise BackendUnavailable("memory", "gone")

    monkeypatch.setattr(group.store, "mark_left", down)
    with capture_logs() as logs:
        await hb.leave()
    (failed,) = events(logs, "leave_failed")
    assert "gone" in failed["error"]
    assert events(logs, "service_left") == []
    # The next beat registers and joins again.
    monkeypatch.undo()
    assert await hb.beat_once()
    assert (await group.get(*MEMBER.key)).is_up


async def test_held_down_round_reports_and_the_gate_crash_is_a_failure(group: ServiceGroup) -> None:
    async def crashing() -> str | None:
        raise RuntimeError("bad check")

    hb = group.heartbeat(MEMBER, gate=crashing)
    with capture_logs() as logs:
        assert await hb.round_once()
        assert await hb.round_once()
    assert hb.check_failure == "check crashed: RuntimeError: bad check"
    assert hb.last_round_ok is True
    assert hb.last_good is not None
    assert len(events(logs, "check_failed")) == 1, "logged when the reason changes, not every round"
    assert len(events(logs, "check_crashed")) == 2
    status = await group.get(*MEMBER.key)
    assert (status.verdict.reason, status.verdict.detail) == ("check_failed", hb.check_failure)
    # A record deleted while held is re-created, so the reason stays readable.
    await group.store.delete(MEMBER.key)
    assert await hb.round_once()
    assert (await group.get(*MEMBER.key)).verdict.detail == hb.check_failure

    hb.gate = None
    with capture_logs() as logs:
        assert await hb.round_once()
    assert hb.check_failure is None
    (passed,) = events(logs, "check_passed")
    assert passed["previous"] == "check crashed: RuntimeError: bad check"
    assert (await group.get(*MEMBER.key)).is_up


async def test_a_failing_hold_is_not_a_good_round(
    group: ServiceGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing() -> str | None:
        return "tcp: refused"

    hb = group.heartbeat(MEMBER, gate=failing)

    async def down(*args: Any) -> bool:
        raise BackendUnavailable("memory", "store down")

    monkeypatch.setattr(group.store, "set_check_failure", down)
    assert not await hb.round_once()
    assert hb.last_round_ok is False
    assert hb.last_good is None


async def _beats(hb: Heartbeat) -> int:
    await anyio.lowlevel.checkpoint()
    return hb.stats.beats


async def test_ten_rounds_take_about_ten_intervals(group: ServiceGroup) -> None:
    hb = group.heartbeat(MEMBER)
    async with anyio.create_task_group() as tg:
        await tg.start(hb.run)
        began = time.monotonic()
        await eventually(lambda: _beats(hb), lambda n: n >= 11, 10 * INTERVAL + 3.0, "eleven beats")
        took = time.monotonic() - began
        tg.cancel_scope.cancel()
    # Jitter only shortens a wait (by at most 10 %): 1.8-2.0 s, plus 1 s of margin for
    # a loaded machine; a loop that waited longer than the interval would take >= 2.2 s
    # per ten rounds and fail once it doubles.
    assert 10 * INTERVAL * 0.9 - 0.05 <= took <= 10 * INTERVAL + 1.0, took


async def test_a_hung_leave_is_bounded_and_logged(
    group: ServiceGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    hb = group.heartbeat(MEMBER, leave_timeout=0.1)

    async def hung(member: Any) -> None:
        await anyio.sleep_forever()

    with capture_logs() as logs, anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            await tg.start(hb.run)
            monkeypatch.setattr(group.driver, "leave", hung)
            tg.cancel_scope.cancel()
    (timed_out,) = events(logs, "leave_timed_out")
    assert (timed_out["timeout"], timed_out["log_level"]) == (0.1, "warning")


async def test_hold_failures_name_the_backend(group: ServiceGroup, monkeypatch: pytest.MonkeyPatch) -> None:
    async def failing() -> str | None:
        return "tcp: refused"

    hb = group.heartbeat(MEMBER, gate=failing)
    with monkeypatch.context() as patch, capture_logs() as logs:
        patch.setattr(group.store, "set_check_failure", _down)
        assert not await hb.round_once()
    assert [e["backend"] for e in events(logs, "beat_failed")] == ["store"]
    hb = group.heartbeat(MEMBER, gate=failing)
    with monkeypatch.context() as patch, capture_logs() as logs:
        patch.setattr(group.driver, "leave", _down)
        assert not await hb.round_once()
    assert [e["backend"] for e in events(logs, "beat_failed")] == ["driver"]


async def test_an_empty_gate_answer_is_held_as_check_failed(group: ServiceGroup) -> None:
    async def empty() -> str | None:
        return ""

    hb = group.heartbeat(MEMBER, gate=empty)
    assert await hb.round_once()
    assert (await group.get(*MEMBER.key)).service.check_failure == "check failed"


async def test_joining_after_a_hold_is_not_a_rejoin(group: ServiceGroup) -> None:
    failure: str | None = None

    async def gate() -> str | None:
        return failure

    hb = group.heartbeat(MEMBER, gate=gate)
    assert await hb.round_once()
    failure = "down"
    assert await hb.round_once()
    failure = None
    with capture_logs() as logs:
        assert await hb.round_once()
        assert await hb.round_once()
    assert events(logs, "service_rejoined") == []
    assert hb.stats.rejoins == 0
    assert (await group.get(*MEMBER.key)).is_up


async def test_outage_seconds_are_rounded_and_since_the_first_failure(
    group: ServiceGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    hb = group.heartbeat(MEMBER)
    monkeypatch.setattr(group.store, "beat", _down)
    with capture_logs() as logs:
        assert not await hb.beat_once()
        assert not await hb.beat_once()
    for event in events(logs, "beat_failed"):
        assert isinstance(event["outage_s"], float)
        assert 0 <= event["outage_s"] < 5
        assert round(event["outage_s"], 3) == event["outage_s"]


async def _down(*args: Any, **kwargs: Any) -> Any:
    raise BackendUnavailable("memory", "down")


# -- the db driver's beat (issue 12: the agent's CPU per beat) ------------------------------


@pytest.fixture
async def db_group() -> AsyncIterator[ServiceGroup]:
    name = f"hb{next(_names)}"
    async with ServiceGroup.from_urls(
        f"memory://{name}", "db://", report_interval=INTERVAL, service_down_time=DOWN_TIME
    ) as g:
        yield g


async def test_a_db_driver_beat_spawns_no_task(db_group: ServiceGroup) -> None:
    """The db driver holds nothing: its step runs inline, with no child task per beat
    (spawning and cancelling it was most of an agent's CPU per beat)."""
    import asyncio

    loop = asyncio.get_running_loop()
    spawned = 0
    previous = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        nonlocal spawned
        spawned += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    hb = db_group.heartbeat(MEMBER)
    assert await hb.beat_once()  # registers: not what is counted
    loop.set_task_factory(counting)
    try:
        for _ in range(5):
            assert await hb.beat_once()
    finally:
        loop.set_task_factory(previous)
    assert spawned == 0
    assert hb.stats.beats == 6
    assert hb.stats.outages == {}
    verdict = await db_group.verdict((await db_group.get(MEMBER.host, MEMBER.binary)).service)
    assert verdict.is_up


async def test_a_db_driver_beat_fails_with_its_store(
    db_group: ServiceGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    hb = db_group.heartbeat(MEMBER)
    assert await hb.beat_once()

    async def down(key: object) -> BeatResult | None:
        raise BackendUnavailable("memory", "store is down")

    monkeypatch.setattr(db_group.store, "beat", down)
    assert not await hb.beat_once()
    assert hb.stats.failures == 1
    assert set(hb.stats.outages) == {"store"}
    assert hb.last_round_ok is None  # beat_once alone does not keep round books
    monkeypatch.undo()
    assert await hb.beat_once()
    assert hb.stats.outages == {}


async def test_a_driver_outage_ends_when_the_driver_becomes_db(
    group: ServiceGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reload from a failing driver to ``db://``: the next beat ends the outage, once."""
    from sg.drivers.db import DBDriver

    hb = group.heartbeat(MEMBER)
    assert await hb.beat_once()

    async def down(member: Member) -> bool:
        raise BackendUnavailable("memory", "driver is down")

    monkeypatch.setattr(group.driver, "refresh", down)
    assert not await hb.beat_once()
    assert set(hb.stats.outages) == {"driver"}
    group.backends.swap_driver(DBDriver(group.backends.timings))
    with capture_logs() as logs:
        assert await hb.beat_once()
        assert await hb.beat_once()
    assert hb.stats.outages == {}
    recovered = events(logs, "beat_recovered")
    assert [(e["backend"], e["failures"]) for e in recovered] == [("driver", 1)]


# -- the sleep between rounds --------------------------------------------------------------


@pytest.fixture
async def slow_group() -> AsyncIterator[ServiceGroup]:
    name = f"hb{next(_names)}"
    async with ServiceGroup.from_urls(
        f"memory://{name}", "db://", report_interval=5.0, service_down_time=30.0
    ) as g:
        yield g


async def test_a_poke_starts_the_next_round_at_once(slow_group: ServiceGroup) -> None:
    hb = slow_group.heartbeat(MEMBER)
    with anyio.fail_after(5):  # far below the 5 s interval x 2 the rounds would take unpoked
        async with anyio.create_task_group() as tg:
            await tg.start(hb.run)
            await eventually(_beats_of(hb), lambda n: n >= 1, 2.0, "the first beat")
            hb.poke()  # while it sleeps
            await eventually(_beats_of(hb), lambda n: n >= 2, 2.0, "a poked beat")
            hb.set_report_interval(None)  # a reload pokes too
            await eventually(_beats_of(hb), lambda n: n >= 3, 2.0, "a beat after a reload")
            tg.cancel_scope.cancel()


async def test_a_poke_during_a_round_is_not_lost(slow_group: ServiceGroup) -> None:
    hb = slow_group.heartbeat(MEMBER)
    poked = False

    async def gate() -> str | None:
        nonlocal poked
        if not poked:
            poked = True
            hb.poke()  # during the first round, before its sleep
        return None

    hb.gate = gate
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            await tg.start(hb.run)
            await eventually(_beats_of(hb), lambda n: n >= 2, 2.0, "the round the poke asked for")
            tg.cancel_scope.cancel()


async def test_the_sleep_between_rounds_delivers_no_cancellation(group: ServiceGroup) -> None:
    """Issue 12: a round ends in a plain sleep, not a timeout cancelling a wait."""
    import asyncio

    cancels = 0

    class CountingTask(asyncio.Task):  # type: ignore[type-arg]
        def cancel(self, msg: Any = None) -> bool:
            nonlocal cancels
            cancels += 1
            return super().cancel(msg)

    loop = asyncio.get_running_loop()
    previous = loop.get_task_factory()
    loop.set_task_factory(lambda loop, coro, **kw: CountingTask(coro, loop=loop, **kw))
    try:
        hb = group.heartbeat(MEMBER)
        async with anyio.create_task_group() as tg:
            await tg.start(hb.run)
            await eventually(_beats_of(hb), lambda n: n >= 4, 5.0, "four beats")
            before = cancels
            assert before == 0
            tg.cancel_scope.cancel()
    finally:
        loop.set_task_factory(previous)


def _beats_of(hb: Heartbeat) -> Any:
    async def probe() -> int:
        return hb.stats.beats

    return probe
