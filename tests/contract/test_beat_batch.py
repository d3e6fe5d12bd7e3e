"""Batched heartbeats: Store.beat_many on every store, and Backends.batch_beats (the
agent's) on every store x driver, with a deleted record and a lost member among the batch."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from sg import Member, ServiceGroup
from sg.backends import Backends
from sg.drivers.base import Driver
from sg.drivers.db import DBDriver
from sg.drivers.memory import MemoryDriver
from sg.errors import BackendUnavailable
from sg.heartbeat import Heartbeat
from sg.model import ServiceKey
from sg.store.base import BatchBeats, BeatResult
from sg.store.memory import MemoryStore
from sg.timings import Timings

_names = itertools.count()


class CountingStore(MemoryStore):
    """A memory store that counts its beat_many calls (and can fail them)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.batches: list[list[ServiceKey]] = []
        self.fail = False

    async def beat_many(self, keys: Sequence[ServiceKey]) -> list[BeatResult | None]:
        self.batches.append(list(keys))
        if self.fail:
            raise BackendUnavailable(self.name, "injected fault")
        return await super().beat_many(keys)


def _members(n: int) -> list[Member]:
    prefix = f"b{next(_names)}"
    return [Member(f"{prefix}-host-{i}", "nova-compute", "compute") for i in range(n)]


async def test_beat_many_equals_beat_on_every_store(group: ServiceGroup) -> None:
    store = group.store
    assert isinstance(store, BatchBeats)
    members = _members(3)
    for m in members:
        await store.register(m)
    await store.set_check_failure(members[1].key, "pidfile: gone")
    await store.mark_left(members[2].key)
    missing = ServiceKey("no-such-host", "nova-compute")
    keys = [members[0].key, missing, members[1].key, members[2].key]
    results = await store.beat_many(keys)
    assert results[1] is None
    for key, result in zip(keys, results, strict=True):
        if key == missing:
            continue
        assert result is not None
        record = await store.get(key)
        assert record is not None
        assert (result.service_id, result.report_count) == (record.id, 1)
        assert record.age is not None
        assert abs(record.age) < 5
        assert (record.left, record.check_failure) == (False, None)
    again = await store.beat_many([members[0].key])
    assert again[0] is not None
    assert again[0].report_count == 2


async def test_batched_heartbeats_with_a_deleted_record_and_a_lost_member(group: ServiceGroup) -> None:
    backends = group.backends
    assert backends.batch_beats()
    members = _members(4)
    beats = [Heartbeat(backends, m) for m in members]
    for hb in beats:
        assert await hb.beat_once()

    # One record deleted under its live service, one member lost by the driver.
    assert await group.store.delete(members[1].key)
    await group.driver.leave(members[2])

    async with anyio.create_task_group() as tg:
        for hb in beats:
            tg.start_soon(hb.beat_once)
    assert all(hb.stats.beats == 2 for hb in beats), [hb.stats.last_error for hb in beats]
    assert beats[1].stats.rejoins == 1, "the deleted record is re-created and counted"
    if group.driver.name != "db":
        assert beats[2].stats.rejoins == 1, "the lost member is re-joined and counted"
    assert beats[0].stats.rejoins == beats[3].stats.rejoins == 0
    statuses = {s.service.host: s for s in await group.list()}
    assert all(statuses[m.host].is_up for m in members)


async def test_one_round_trip_per_batch() -> None:
    name = f"batch{next(_names)}"
    store = CountingStore(name)
    backends = Backends(store, MemoryDriver(name), Timings(report_interval=1.0, service_down_time=5.0))
    assert backends.batch_beats()
    beats = [Heartbeat(backends, m) for m in _members(5)]
    for hb in beats:
        await store.register(hb.member)
    async with anyio.create_task_group() as tg:
        for hb in beats:
            tg.start_soon(hb.beat_once)
    assert all(hb.stats.beats == 1 for hb in beats)
    assert len(store.batches) == 1
    assert sorted(store.batches[0]) == sorted(hb.key for hb in beats)

    # A failed batch fails every beat in it, each as its own backend fault.
    store.fail = True
    async with anyio.create_task_group() as tg:
        for hb in beats:
            tg.start_soon(hb.beat_once)
    assert all(hb.stats.failures == 1 for hb in beats)
    assert all("injected fault" in (hb.stats.last_error or "") for hb in beats)


async def test_a_cancelled_leader_hands_the_batch_on() -> None:
    name = f"batch{next(_names)}"
    store = CountingStore(name)
    backends = Backends(store, MemoryDriver(name), Timings(report_interval=1.0, service_down_time=5.0))
    assert backends.batch_beats()
    members = _members(3)
    for m in members:
        await store.register(m)
    results: dict[str, BeatResult | None] = {}
    scopes: list[anyio.CancelScope] = []

    async def beat(member: Member, cancellable: bool = False) -> None:
        with anyio.CancelScope() as scope:
            if cancellable:
                scopes.append(scope)
            results[member.host] = await backends.beat(member.key)

    batcher = backends._batcher
    assert batcher is not None
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(beat, members[0], True)  # arrives first: it leads
            while not batcher._waiting:
                await anyio.sleep(0)
            tg.start_soon(beat, members[1])
            tg.start_soon(beat, members[2])
            while len(batcher._waiting) < 3:
                await anyio.sleep(0)
            scopes[0].cancel()  # within its window (0.15 s), before the batch leaves
    assert members[0].host not in results
    assert results[members[1].host] is not None
    assert results[members[2].host] is not None
    assert store.batches == [[members[1].key, members[2].key]]


async def test_without_batching_a_beat_is_the_stores() -> None:
    name = f"batch{next(_names)}"
    store = CountingStore(name)
    backends = Backends(store, MemoryDriver(name), Timings())
    (member,) = _members(1)
    await store.register(member)
    assert not backends.batches_beats
    result = await backends.beat(member.key)
    assert result is not None
    assert store.batches == []


class HangingStore(CountingStore):
    """A memory store whose beat_many never answers once ``hang`` is set."""

    hang = False

    async def beat_many(self, keys: Sequence[ServiceKey]) -> list[BeatResult | None]:
        if self.hang:
            self.batches.append(list(keys))
            await anyio.sleep_forever()
        return await super().beat_many(keys)


async def _registered_batch(
    store: CountingStore, n: int, timings: Timings, driver: Driver | None = None
) -> list[Heartbeat]:
    backends = Backends(store, driver or MemoryDriver(store.name), timings)
    assert backends.batch_beats()
    beats = [Heartbeat(backends, m) for m in _members(n)]
    async with anyio.create_task_group() as tg:
        for hb in beats:
            tg.start_soon(hb.beat_once)  # the first beat registers
    assert all(hb.stats.beats == 1 for hb in beats)
    return beats


async def test_a_batch_keeps_one_deadline_not_one_a_beat(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12: a batched beat has no timer of its own; its batch's leader keeps the one
    deadline (a timer a beat was a third of a batched beat's CPU)."""
    import asyncio

    store = CountingStore(f"batch{next(_names)}")
    timings = Timings(report_interval=1.0, service_down_time=5.0)
    # The db driver: its step has no deadline either (a memory driver's would add one a beat).
    beats = await _registered_batch(store, 8, timings, DBDriver(timings))
    loop = asyncio.get_running_loop()
    timers = 0
    call_at = loop.call_at

    def counting(when: float, callback: Any, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        nonlocal timers
        timers += 1
        return call_at(when, callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", counting)
    async with anyio.create_task_group() as tg:
        for hb in beats:
            tg.start_soon(hb.beat_once)
    monkeypatch.undo()
    assert all(hb.stats.beats == 2 for hb in beats)
    assert len(store.batches) == 2
    # The leader's deadline and its window's sleep; none for the seven that waited.
    assert timers == 2


async def test_a_hung_batch_fails_every_beat_in_it_within_the_bound() -> None:
    """No beat of a batch waits past its own bound, though only the leader keeps one."""
    store = HangingStore(f"batch{next(_names)}")
    timings = Timings(report_interval=1.0, service_down_time=5.0, store_timeout=0.4)
    beats = await _registered_batch(store, 5, timings)
    store.hang = True
    began = time.monotonic()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for hb in beats:
                tg.start_soon(hb.beat_once)
    took = time.monotonic() - began
    assert len(store.batches) == 2  # the first round's, and the hung one
    # The bound is store_timeout (0.4 s) from the leader's arrival, the earliest; the
    # margin (1 s) is for a loaded machine. Without the leader's deadline it would hang.
    assert 0.4 <= took < 1.4, took
    assert all(hb.stats.failures == 1 for hb in beats)
    for hb in beats:
        assert hb.stats.last_error is not None
        assert "no answer within 0.4s" in hb.stats.last_error, hb.stats.last_error
