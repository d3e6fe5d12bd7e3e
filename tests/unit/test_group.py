"""sg/group.py on the in-process memory backends, with backend failures injected:
verdicts of unreachable backends, delete's refusals, min_version over unknowns."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

from sg import ServiceGroup, Settings
from sg.errors import BackendUnavailable, LeaveRefused, NotFound, Refused
from sg.model import Member, ServiceKey
from sg.timings import Timings

_names = itertools.count()
INTERVAL = 0.2
DOWN_TIME = 1.0


def member(host: str = "h1", version: int = 1) -> Member:
    return Member(host, "sg-web", "web", version)


@pytest.fixture
async def group() -> AsyncIterator[ServiceGroup]:
    name = f"grp{next(_names)}"
    async with ServiceGroup.from_urls(
        f"memory://{name}", f"memory://{name}", report_interval=INTERVAL, service_down_time=DOWN_TIME
    ) as g:
        yield g


async def up(group: ServiceGroup, m: Member) -> None:
    assert await group.heartbeat(m).beat_once()


def unreachable(what: str) -> Any:
    async def fail(*args: Any, **kwargs: Any) -> Any:
        raise BackendUnavailable("memory", f"{what} is down")

    return fail


async def test_from_settings_builds_the_named_backends() -> None:
    name = f"grp{next(_names)}"
    settings = Settings(
        store=f"memory://{name}", driver=f"memory://{name}", timings=Timings(report_interval=0.3)
    )
    group = ServiceGroup.from_settings(settings)
    assert (group.store.name, group.driver.name) == ("memory", "memory")
    assert group.timings.report_interval == 0.3
    assert repr(group) == "ServiceGroup(store=memory, driver=memory)"


async def test_verdict_of_unreachable_backends_is_unknown(
    group: ServiceGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = member()
    await up(group, m)
    assert (await group.verdict(m)).state == "up"
    assert await group.is_up(m)
    with monkeypatch.context() as patch:
        patch.setattr(group.driver, "members", unreachable("driver"))
        verdict = await group.verdict(m)
        assert (verdict.state, verdict.reason) == ("unknown", "driver_unreachable")
        assert "driver is down" in (verdict.detail or "")
        assert not await group.is_up(m)
        status = await group.get("h1", "sg-web")
        assert status.verdict.reason == "driver_unreachable"
    with monkeypatch.context() as patch:
        # A verdict reads its record with the store's context in one survey.
        patch.setattr(group.store, "survey", unreachable("store"))
        verdict = await group.verdict(m)
        assert (verdict.state, verdict.reason) == ("unknown", "store_unreachable")
        assert "store is down" in (verdict.detail or "")
    with pytest.raises(NotFound, match=r"no service host='h2' binary='sg-web'"):
        await group.verdict(member("h2"))


async def test_get_and_get_by_uuid_not_found(group: ServiceGroup) -> None:
    with pytest.raises(NotFound, match=r"no service host='nope' binary='sg-web'"):
        await group.get("nope", "sg-web")
    with pytest.raises(NotFound, match=r"no service uuid='u-1'"):
        await group.get_by_uuid("u-1")
    m = member()
    await up(group, m)
    record = (await group.get("h1", "sg-web")).service
    assert (await group.get_by_uuid(record.uuid)).service.key == m.key


async def test_admin_changes_take_a_service_or_a_key(group: ServiceGroup) -> None:
    m = member()
    await up(group, m)
    record = (await group.get("h1", "sg-web")).service
    changed = await group.set_disabled(record, True, "why")
    assert (changed.disabled, changed.disabled_reason) == (True, "why")
    changed = await group.set_disabled(m.key, False)
    assert (changed.disabled, changed.disabled_reason) == (False, None)
    assert (await group.set_forced_down(record, True)).forced_down is True
    assert (await group.set_forced_down(m.key, False)).forced_down is False


async def test_leave_takes_a_key_a_service_or_a_member(group: ServiceGroup) -> None:
    m = member()
    for target in (m.key, m, None):
        await up(group, m)
        assert (await group.get("h1", "sg-web")).is_up
        await group.leave(target if target is not None else (await group.get("h1", "sg-web")).service)
        status = await group.get("h1", "sg-web")
        assert (status.verdict.state, status.verdict.reason) == ("down", "left")
        assert (await group.driver.members([m]))[m.key] is False
    with pytest.raises(NotFound):
        await group.leave(ServiceKey("nope", "sg-web"))


async def test_delete_refuses_up_and_unknown_services_unless_forced(
    group: ServiceGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = member()
    await up(group, m)
    with pytest.raises(Refused, match=r"host='h1' binary='sg-web' is up \(ok\); stop it first or use force"):
        await group.delete(m.key)
    with monkeypatch.context() as patch:
        patch.setattr(group.driver, "members", unreachable("driver"))
        with pytest.raises(Refused, match=r"is unknown \(driver_unreachable\)"):
            await group.delete(m.key)
    assert await group.store.get(m.key) is not None, "a refused delete changed nothing"
    with capture_logs() as logs:
        await group.delete(m.key, force=True)
    assert await group.store.get(m.key) is None
    (deleted,) = [e for e in logs if e["event"] == "service_deleted"]
    assert (deleted["host"], deleted["binary"], deleted["forced"]) == ("h1", "sg-web", True)
    with pytest.raises(NotFound):
        await group.delete(m.key)


async def test_delete_of_a_down_service_needs_no_force(group: ServiceGroup) -> None:
    m = member()
    await up(group, m)
    await group.leave(m)
    record = (await group.get("h1", "sg-web")).service
    with capture_logs() as logs:
        await group.delete(record)
    assert [e["forced"] for e in logs if e["event"] == "service_deleted"] == [False]
    assert await group.store.get(m.key) is None


async def test_delete_when_the_driver_cannot_leave(
    group: ServiceGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = member()
    await up(group, m)
    await group.set_forced_down(m.key, True)
    monkeypatch.setattr(group.driver, "leave", unreachable("driver"))
    with pytest.raises(
        LeaveRefused, match=r"cannot remove the member .*driver is down.*; nothing was deleted"
    ) as info:
        await group.delete(m.key)
    assert isinstance(info.value, BackendUnavailable)
    assert await group.store.get(m.key) is not None
    with capture_logs() as logs:
        await group.delete(m.key, force=True)
    assert await group.store.get(m.key) is None
    (warned,) = [e for e in logs if e["event"] == "delete_driver_leave_failed"]
    assert (warned["host"], warned["binary"]) == ("h1", "sg-web")
    assert "driver is down" in warned["error"]


async def test_delete_of_a_record_gone_meanwhile_is_not_found(
    group: ServiceGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = member()
    await up(group, m)
    await group.leave(m)

    async def gone(key: ServiceKey, **audit: Any) -> bool:
        return False

    monkeypatch.setattr(group.store, "delete", gone)
    with pytest.raises(NotFound, match=r"host='h1' binary='sg-web'"):
        await group.delete(m.key)


async def test_min_version_over_up_services_and_unknowns(
    group: ServiceGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await group.min_version("sg-web") is None
    assert await group.min_version("sg-web", only_up=True) is None
    await up(group, member("a", 7))
    await up(group, member("b", 5))
    await up(group, member("c", 3))
    await group.leave(member("c", 3))
    assert await group.heartbeat(Member("z", "other-binary", "web", 1)).beat_once()  # not counted
    assert await group.min_version("sg-web") == 3
    assert await group.min_version("sg-web", only_up=True) == 5
    monkeypatch.setattr(group.driver, "members", unreachable("driver"))
    # c is down for sure (left); a and b are unknown.
    with pytest.raises(
        BackendUnavailable, match=r"min_version: 2 of 3 services are unknown \(driver_unreachable: "
    ) as info:
        await group.min_version("sg-web", only_up=True)
    assert info.value.backend == "memory"
    assert await group.min_version("sg-web") == 3


async def _hang(*args: Any, **kwargs: Any) -> Any:
    await anyio.sleep_forever()


@pytest.mark.parametrize(
    ("backend", "method", "what", "call"),
    [
        # get, get_by_uuid, list and verdict read through one survey (records and context).
        ("store", "survey", "survey", lambda g, m: g.get(m.host, m.binary)),
        ("store", "survey", "survey", lambda g, m: g.get_by_uuid("u-1")),
        ("store", "survey", "survey", lambda g, m: g.list()),
        ("store", "min_version", "min_version", lambda g, m: g.min_version(m.binary)),
        ("store", "set_disabled", "set_disabled", lambda g, m: g.set_disabled(m.key, True)),
        ("store", "set_forced_down", "set_forced_down", lambda g, m: g.set_forced_down(m.key, True)),
        ("store", "delete", "delete", lambda g, m: g.delete(m.key, force=True)),
        ("driver", "leave", "leave", lambda g, m: g.delete(m.key)),  # LeaveRefused, naming it
    ],
)
async def test_a_hung_backend_call_times_out_naming_the_call(
    backend: str, method: str, what: str, call: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every call of the group runs under the backend's deadline, and the error says which."""
    async with _quick_group() as group:
        m = member()
        await up(group, m)
        await group.leave(m)  # down, so a delete without force goes on to the driver
        monkeypatch.setattr(group.store if backend == "store" else group.driver, method, _hang)
        with anyio.fail_after(5), pytest.raises(BackendUnavailable) as info:
            await call(group, m)
    assert f"{what}: no answer within 0.1s" in str(info.value)
    assert info.value.backend == "memory"


async def test_a_hung_store_makes_the_verdict_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    async with _quick_group() as group:
        m = member()
        await up(group, m)
        monkeypatch.setattr(group.store, "survey", _hang)
        with anyio.fail_after(5):
            verdict = await group.verdict(m)
    assert (verdict.state, verdict.reason) == ("unknown", "store_unreachable")
    assert verdict.detail == "memory unavailable: survey: no answer within 0.1s"


def _quick_group() -> ServiceGroup:
    name = f"grp{next(_names)}"
    return ServiceGroup.from_urls(
        f"memory://{name}",
        f"memory://{name}",
        report_interval=INTERVAL,
        service_down_time=DOWN_TIME,
        store_timeout=0.1,
        driver_timeout=0.1,
    )


async def test_watch_polls_at_most_every_second_and_uses_the_notifier(group: ServiceGroup) -> None:
    """Without an interval the watch lists every min(report_interval, 1 s); the memory
    driver has no notifier, so the interval is what paces it."""
    listed = 0
    real_list = group.list

    async def counting(**kwargs: Any) -> Any:
        nonlocal listed
        listed += 1
        return await real_list(**kwargs)

    group.list = counting  # type: ignore[method-assign]
    began = time.monotonic()
    with anyio.move_on_after(3 * INTERVAL + INTERVAL / 2):
        async for _ in group.watch():
            pass
    took = time.monotonic() - began
    # Rounds at 0, 0.2, 0.4, 0.6 s: four listings in 0.7 s; a loaded machine only
    # gives fewer, never more (each round waits a whole interval).
    assert 1 <= listed <= 4, (listed, took)
    assert listed <= took / INTERVAL + 1


@pytest.mark.parametrize("local", [True, False], ids=["after-the-store", "beside-the-store"])
async def test_verdict_rules_hold_whether_the_driver_is_asked_after_or_beside_the_store(
    local: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver that says ``local`` is asked after the store read, in the same task; any
    other beside it, in a task group: the verdicts are the same, failures and deadlines
    included."""
    async with _quick_group() as group:
        monkeypatch.setattr(group.driver, "local", local)
        assert group.backends.local_membership is local
        m = member()
        await up(group, m)
        assert ((await group.verdict(m)).state, await group.is_up(m)) == ("up", True)
        with monkeypatch.context() as patch:
            patch.setattr(group.driver, "members", _hang)
            with anyio.fail_after(5):
                verdict = await group.verdict(m)
            assert (verdict.state, verdict.reason) == ("unknown", "driver_unreachable")
            assert verdict.detail == "memory unavailable: members: no answer within 0.1s"
        with monkeypatch.context() as patch:
            patch.setattr(group.store, "survey", unreachable("store"))
            patch.setattr(group.driver, "members", _hang)  # not waited for: the store decides
            with anyio.fail_after(5):
                verdict = await group.verdict(m)
            assert (verdict.state, verdict.reason) == ("unknown", "store_unreachable")
        await group.leave(m)
        verdict = await group.verdict(m)
        assert (verdict.state, verdict.reason) == ("down", "left")
        with pytest.raises(NotFound):
            await group.verdict(member("h2"))


async def test_a_deadline_around_a_backend_call_is_the_callers_not_a_backend_timeout() -> None:
    """Each backend call has its own deadline (BackendTimeout naming the call); a caller's
    shorter deadline or cancellation passes through it as the caller's."""
    async with _quick_group() as group:
        backends = group.backends
        with pytest.raises(BackendUnavailable, match=r"survey: no answer within 0\.05s"):
            await backends.store_call("survey", _hang(), timeout=0.05)
        with pytest.raises(BackendUnavailable, match=r"members: no answer within 0\.1s"):
            await backends.driver_call("members", _hang())
        began = time.monotonic()
        with pytest.raises(TimeoutError) as outer:
            with anyio.fail_after(0.05):
                await backends.store_call("survey", _hang(), timeout=5)
        assert not isinstance(outer.value, BackendUnavailable)
        with anyio.move_on_after(0.05) as scope:
            await backends.driver_call("members", _hang(), timeout=5)
        assert scope.cancelled_caught
        assert time.monotonic() - began < 4
        assert await backends.store_call("survey", _answer(7), timeout=0.05) == 7


async def _answer(value: int) -> int:
    await anyio.sleep(0)
    return value


@pytest.mark.parametrize("hung", ["store and driver", "driver"])
async def test_a_cancelled_verdict_cancels_its_driver_task_and_waits_for_it(
    hung: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beside the store, the driver is asked in a child task: a caller's deadline (an anyio
    scope around the verdict) cancels the store read and the child, and the verdict
    returns only once the child has finished (structured: nothing left running)."""
    events: list[str] = []

    async def hang(what: str) -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            events.append(f"{what} cancelled")
            raise
        finally:
            events.append(f"{what} finished")

    async with ServiceGroup.from_urls(
        "memory://",
        "memory://",
        report_interval=INTERVAL,
        service_down_time=DOWN_TIME,
        store_timeout=30,
        driver_timeout=30,
    ) as group:
        monkeypatch.setattr(group.driver, "local", False)
        m = member()
        await up(group, m)
        monkeypatch.setattr(group.driver, "members", lambda services: hang("driver"))
        if hung != "driver":
            monkeypatch.setattr(group.store, "survey", lambda query: hang("store"))
        began = time.monotonic()
        with anyio.move_on_after(0.1) as scope:
            await group.verdict(m)
        # Read before any other await: the child must be done already, not merely doomed.
        done = list(events)
        assert scope.cancelled_caught
        assert time.monotonic() - began < 5
        expected = ["driver cancelled", "driver finished"]
        if hung != "driver":
            expected += ["store cancelled", "store finished"]
        assert sorted(done) == sorted(expected)


async def test_a_failing_driver_task_cancels_the_store_read_and_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fault that is no backend's outage (a bug) in the driver's child task is not
    swallowed: it cancels the store read and comes out of the verdict (in a group)."""
    cancelled = anyio.Event()

    async def store_hangs(query: Any) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    async def driver_fails(services: Any) -> None:
        await anyio.sleep(0.01)
        raise RuntimeError("bug in the driver")

    async with ServiceGroup.from_urls(
        "memory://", "memory://", store_timeout=30, driver_timeout=30, report_interval=INTERVAL
    ) as group:
        monkeypatch.setattr(group.driver, "local", False)
        m = member()
        await up(group, m)
        monkeypatch.setattr(group.driver, "members", driver_fails)
        monkeypatch.setattr(group.store, "survey", store_hangs)
        with anyio.fail_after(5), pytest.raises(BaseExceptionGroup) as info:
            await group.verdict(m)
        assert cancelled.is_set()
        assert [type(e) for e in info.value.exceptions] == [RuntimeError]
