"""The HA tests' scorer, :class:`sg.testing.sampler.VerdictSampler`, on a memory group:
it must call a killed service read up past its bound a false up, a live service read
down a false down, and a failed read unknown for every known service."""

from __future__ import annotations

import time

import pytest

from sg import ServiceGroup
from sg.errors import BackendUnavailable
from sg.model import ServiceKey
from sg.testing.sampler import VerdictSampler

TOPIC = "t"


async def test_scores_false_up_false_down_and_detection(sg_memory_group: ServiceGroup) -> None:
    group = sg_memory_group
    keys = [ServiceKey(f"h{i}", "b") for i in range(3)]
    async with group.join("b", TOPIC, host="h0"), group.join("b", TOPIC, host="h1"):
        async with group.join("b", TOPIC, host="h2"):
            pass  # h2 leaves at once: it reads down/left
        sampler = VerdictSampler(group, interval=0.1, topic=TOPIC, expected=keys)
        # h0 "killed" with a bound already past, but it still beats: a false up.
        sampler.killed(keys[0], bound=0.0, at=time.monotonic() - 1)
        sample = await sampler.read_once()
    assert (sample.up, sample.down, sample.unknown) == (2, 1, 0)
    assert sample.false_up == 1
    assert sample.false_down == 1  # h2 was not killed
    assert sample.reasons == {"false_up/ok": 1, "false_down/left": 1}
    # Every service has left now. h2 is declared killed: its down is a detection within
    # its bound; h0's is a detection past its (zero) bound; h1's is a false down.
    sampler.killed(keys[2], bound=5.0)
    sample = await sampler.read_once()
    assert (sample.down, sample.false_down) == (3, 1)
    assert sampler.detected[keys[2]] <= sample.ended - sampler.deaths[keys[2]].at
    assert set(sampler.late()) == {keys[0]}
    assert sampler.undetected() == {}
    assert sampler.tally().samples == 2
    assert sampler.tally().false_down == 2
    assert [k for _, k, _, _ in sampler.transitions[:3]] == keys


async def test_missing_record_is_down_and_failed_read_is_unknown(
    sg_memory_group: ServiceGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = sg_memory_group
    sampler = VerdictSampler(group, interval=0.1, topic=TOPIC, expected=[ServiceKey("ghost", "b")])
    sample = await sampler.read_once()
    assert (sample.down, sample.false_down) == (1, 1)
    assert sample.reasons == {"false_down/missing": 1}

    async def unreachable(**_: object) -> None:
        raise BackendUnavailable("memory", "down for the test")

    monkeypatch.setattr(group, "list", unreachable)
    sample = await sampler.read_once()
    assert sample.error is not None
    assert sample.unexpected is None
    assert (sample.up, sample.down, sample.unknown) == (0, 0, 1)

    async def crashing(**_: object) -> None:
        raise RuntimeError("an untranslated bug")

    monkeypatch.setattr(group, "list", crashing)
    sample = await sampler.read_once()
    assert sample.unexpected is not None
    assert "RuntimeError" in sample.unexpected
    assert sampler.tally().unexpected_errors == 1
    assert sampler.tally().failed_reads == 2


async def test_interval_must_be_positive(sg_memory_group: ServiceGroup) -> None:
    with pytest.raises(ValueError, match="interval"):
        VerdictSampler(sg_memory_group, interval=0)
