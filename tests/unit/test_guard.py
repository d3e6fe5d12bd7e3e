"""The fleet guard (sg/guard.py): mass events read unknown, lone deaths stay down."""

from __future__ import annotations

import pytest

from sg.errors import ConfigError
from sg.guard import SILENCE_LIMIT, Guard, recovery_window
from sg.model import Service, ServiceStatus, StoreContext
from sg.timings import Timings
from sg.verdict import judge

T = Timings(report_interval=10.0, service_down_time=60.0)
GUARD = Guard(share=0.2, min_count=3)


def status(host: str, age: float | None, seen: bool | None = True, topic: str = "compute") -> ServiceStatus:
    service = Service(host=host, binary="nova-compute", topic=topic, age=age)
    return ServiceStatus(service, judge(service, service_down_time=T.service_down_time, driver_seen=seen))


def reasons(statuses: list[ServiceStatus]) -> dict[str, str]:
    return {s.service.host: f"{s.verdict.state}/{s.verdict.reason}" for s in statuses}


def healthy(n: int, age: float = 3.0, topic: str = "compute") -> list[ServiceStatus]:
    return [status(f"ok{i}", age, topic=topic) for i in range(n)]


def test_a_lone_death_in_a_healthy_fleet_stays_down() -> None:
    rows = [*healthy(9), status("dead", 61.0)]
    ctx = StoreContext(total=10, newest_age=1.0)
    assert reasons(GUARD.apply(rows, ctx, T))["dead"] == "down/stale"


def test_a_lone_member_loss_stays_down() -> None:
    rows = [*healthy(9), status("gone", 2.0, seen=False)]
    assert reasons(GUARD.apply(rows, StoreContext(total=10, newest_age=1.0), T))["gone"] == "down/not_joined"


def test_a_silent_store_reads_store_recovering_for_those_alive_when_it_fell_silent() -> None:
    # The newest stamp anywhere is 90 s old: nobody could write.
    rows = [status(f"s{i}", 90.0 + i) for i in range(5)] + [status("long-dead", 5000.0)]
    ctx = StoreContext(total=6, newest_age=90.0)
    got = reasons(GUARD.apply(rows, ctx, T))
    assert {got[f"s{i}"] for i in range(5)} == {"unknown/store_recovering"}
    assert got["long-dead"] == "down/stale"


def test_a_silence_has_an_end() -> None:
    age = SILENCE_LIMIT * T.service_down_time + 1
    rows = [status(f"s{i}", age) for i in range(5)]
    got = reasons(GUARD.apply(rows, StoreContext(total=5, newest_age=age), T))
    assert set(got.values()) == {"down/stale"}


def test_a_small_store_gets_no_silence_guard() -> None:
    rows = [status("a", 90.0), status("b", 90.0)]
    assert set(reasons(GUARD.apply(rows, StoreContext(total=2, newest_age=90.0), T)).values()) == {
        "down/stale"
    }


def test_peers_of_resumed_beats_read_store_recovering() -> None:
    # Beats resumed after a silence; their previous stamps were 95-100 s old. Those that
    # fell silent with them get the window; one that died long before does not.
    rows = [*healthy(3, age=1.0), status("late", 98.0), status("older", 400.0)]
    ctx = StoreContext(total=5, newest_age=1.0, resumed=(100.0, 95.0))
    got = reasons(GUARD.apply(rows, ctx, T))
    assert got["late"] == "unknown/store_recovering"
    assert got["older"] == "down/stale"


def test_many_stale_at_once_read_mass_stale_until_one_more_down_time() -> None:
    rows = [*healthy(6), *(status(f"rack{i}", 70.0 + i) for i in range(4))]
    ctx = StoreContext(total=10, newest_age=1.0)
    got = reasons(GUARD.apply(rows, ctx, T))
    assert {got[f"rack{i}"] for i in range(4)} == {"unknown/mass_stale"}
    later = [*healthy(6), *(status(f"rack{i}", 2 * T.service_down_time + 1 + i) for i in range(4))]
    assert {reasons(GUARD.apply(later, ctx, T))[f"rack{i}"] for i in range(4)} == {"down/stale"}


def test_stale_spread_over_time_is_not_a_mass() -> None:
    # Four deaths, each more than one interval apart: four lone deaths.
    rows = [*healthy(6), *(status(f"d{i}", 61.0 + 11 * i) for i in range(4))]
    got = reasons(GUARD.apply(rows, StoreContext(total=10, newest_age=1.0), T))
    assert {got[f"d{i}"] for i in range(4)} == {"down/stale"}


def test_mass_is_per_topic() -> None:
    rows = [*healthy(30, topic="big"), *(status(f"x{i}", 70.0, topic="big") for i in range(3))]
    got = reasons(GUARD.apply(rows, StoreContext(total=33, newest_age=1.0), T))
    # 3 of 33 is under 20 %: three deaths, read down.
    assert {got[f"x{i}"] for i in range(3)} == {"down/stale"}


def test_driver_mass_loss_reads_driver_recovering_within_the_window() -> None:
    rows = [*healthy(6), *(status(f"m{i}", 2.0, seen=False) for i in range(4))]
    got = reasons(GUARD.apply(rows, StoreContext(total=10, newest_age=1.0), T))
    assert {got[f"m{i}"] for i in range(4)} == {"unknown/driver_recovering"}


def test_driver_mass_loss_after_the_window_is_down() -> None:
    age = recovery_window(T) + 0.1
    rows = [*healthy(6), *(status(f"m{i}", age, seen=False) for i in range(4))]
    got = reasons(GUARD.apply(rows, StoreContext(total=10, newest_age=1.0), T))
    assert {got[f"m{i}"] for i in range(4)} == {"down/not_joined"}


def test_topic_sizes_given_for_a_partial_listing() -> None:
    rows = [status(f"x{i}", 70.0) for i in range(3)]
    # Alone, 3 of 3 is a mass; in a topic of 100 it is not.
    assert set(reasons(GUARD.apply(rows, StoreContext(), T)).values()) == {"unknown/mass_stale"}
    got = GUARD.apply(rows, StoreContext(), T, topic_sizes={"compute": 100})
    assert set(reasons(got).values()) == {"down/stale"}


def test_never_up_and_confident_reasons_untouched() -> None:
    forced = Service(host="f", binary="b", topic="compute", age=90.0, forced_down=True)
    left = Service(host="l", binary="b", topic="compute", age=90.0, left=True)
    rows = [ServiceStatus(s, judge(s, service_down_time=60.0, driver_seen=True)) for s in (forced, left)] + [
        status(f"s{i}", 90.0) for i in range(4)
    ]
    got = GUARD.apply(rows, StoreContext(total=6, newest_age=90.0), T)
    assert reasons(got)["f"] == "down/forced_down"
    assert reasons(got)["l"] == "down/left"
    assert not any(s.is_up for s in got)


@pytest.mark.parametrize(
    ("share", "count"), [(0.0, 3), (1.0, 3), (float("nan"), 3), (0.2, 1), (0.2, True), ("x", 3)]
)
def test_bad_settings_are_refused(share: object, count: object) -> None:
    with pytest.raises(ConfigError, match="mass_"):
        Guard(share=share, min_count=count)  # type: ignore[arg-type]
