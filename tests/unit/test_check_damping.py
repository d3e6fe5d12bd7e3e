"""Flap damping (agent/checks/damping.py) with a check that alternates, alone and as the
gate of a real heartbeat (SQLite store, db driver), and its settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.checks import Damped, damped
from agent.settings import ServiceSpec, agent_settings
from sg import ServiceGroup
from sg.config import Settings
from sg.errors import ConfigError
from sg.model import Member


class Alternating:
    """A check that fails, passes, fails, ... (or follows ``pattern``: F fails, P passes)."""

    def __init__(self, pattern: str = "FP") -> None:
        self.pattern = pattern
        self.runs = 0

    async def __call__(self) -> str | None:
        outcome = self.pattern[self.runs % len(self.pattern)]
        self.runs += 1
        return None if outcome == "P" else f"failed run {self.runs}"


async def verdicts(check: Damped | Alternating, rounds: int) -> list[str]:
    """'F' held down, 'P' passing, for each round."""
    return ["P" if await check() is None else "F" for _ in range(rounds)]


async def test_undamped_follows_the_check_every_round() -> None:
    assert damped(Alternating(), 1, 1).__class__ is Alternating  # 1 and 1: the check itself
    assert await verdicts(Alternating(), 6) == list("FPFPFP")


async def test_an_alternating_check_never_holds_a_service_down_with_fail_after_2() -> None:
    check = Damped(Alternating(), fail_after=2)
    assert await verdicts(check, 10) == list("P" * 10)


async def test_fail_after_and_pass_after_count_runs_in_a_row() -> None:
    check = Damped(Alternating("FFFPPFPPPP"), fail_after=3, pass_after=3)
    #                           runs:  F F F P P F P P P P
    assert await verdicts(check, 10) == list("PPFFFFFFPP")
    # While held, the reason is the latest failure's.
    held = Damped(Alternating("FFF"), fail_after=2)
    assert [await held() for _ in range(3)] == [None, "failed run 2", "failed run 3"]


def test_rounds_are_bounded() -> None:
    for bad in (0, 101):
        with pytest.raises(ValueError, match="fail_after"):
            Damped(Alternating(), fail_after=bad)


def test_settings_read_damping_zone_and_enable_new_services() -> None:
    settings = Settings(
        sections={
            "enable_new_services": False,
            "service": [
                {"binary": "a", "topic": "t", "host": "h", "check_fail_after": 3, "check_pass_after": 2},
                {"binary": "b", "topic": "t", "host": "h", "zone": "rack-4", "enable_new_services": True},
            ],
        }
    )
    a, b = agent_settings(settings).services
    assert (a.check_fail_after, a.check_pass_after, a.zone, a.enable_new) == (3, 2, "internal", False)
    assert (b.check_fail_after, b.check_pass_after, b.zone, b.enable_new) == (1, 1, "rack-4", True)
    assert a.member.enable_new is False
    assert b.member.zone == "rack-4"


@pytest.mark.parametrize(
    ("service", "needle"),
    [
        ({"check_fail_after": 0}, "check_fail_after must be from 1 to 100"),
        ({"check_pass_after": 1000}, "check_pass_after must be from 1 to 100"),
        ({"check_pass_after": "2"}, "'check_pass_after' must be an integer"),
        ({"zone": " x"}, "zone"),
        ({"enable_new_services": "no"}, "'enable_new_services' must be true or false"),
    ],
)
def test_bad_damping_and_zone_settings_name_the_key(service: dict[str, object], needle: str) -> None:
    raw = {"binary": "a", "topic": "t", "host": "h", **service}
    with pytest.raises(ConfigError, match=needle):
        agent_settings(Settings(sections={"service": [raw]}))
    with pytest.raises(ConfigError, match="enable_new_services"):
        agent_settings(Settings(sections={"enable_new_services": 1, "service": []}))


@pytest.mark.parametrize(("fail_after", "flaps"), [(1, True), (2, False)])
async def test_a_heartbeat_gated_by_an_alternating_check(
    tmp_path: Path, fail_after: int, flaps: bool
) -> None:
    spec = ServiceSpec("sg-web", "web", host="h1", check_fail_after=fail_after)
    async with ServiceGroup.from_urls(
        f"sqlite://{tmp_path}/s.db", report_interval=0.2, service_down_time=1.0
    ) as group:
        gate = damped(Alternating(), spec.check_fail_after, spec.check_pass_after)
        hb = group.heartbeat(Member("h1", "sg-web", "web"), gate=gate)
        held_rounds = 0
        for _ in range(6):
            assert await hb.round_once()
            status = await group.get("h1", "sg-web")
            if status.verdict.reason == "check_failed":
                held_rounds += 1
            else:
                assert status.is_up
        assert (held_rounds == 3) if flaps else (held_rounds == 0)
