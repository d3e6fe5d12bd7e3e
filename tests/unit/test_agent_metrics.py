"""agent/metrics.py: the counters follow the heartbeat's failures and re-joins (memory
backends, faults injected), per service."""

from __future__ import annotations

import itertools

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.metrics import AgentMetrics
from sg import ServiceGroup
from sg.errors import BackendUnavailable
from sg.model import Member

_names = itertools.count()
WEB = Member("m1", "sg-web", "web")
DB = Member("m1", "sg-db", "db")


def scrape(metrics: AgentMetrics, member: Member) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.labels.get("binary") == member.binary and "le" not in sample.labels:
                out[sample.name] = sample.value
    return out


async def test_failures_and_rejoins_are_counted_per_service(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"metrics{next(_names)}"
    metrics = AgentMetrics()
    async with ServiceGroup.from_urls(
        f"memory://{name}", f"memory://{name}", report_interval=0.2, service_down_time=1.0
    ) as group:
        web = group.heartbeat(WEB, observer=metrics.observe)
        db = group.heartbeat(DB, observer=metrics.observe)
        metrics.track(web)
        metrics.track(db)
        assert scrape(metrics, WEB)["sg_agent_beats_total"] == 0
        assert await web.beat_once()
        assert await db.beat_once()

        async def down(*args: object) -> None:
            raise BackendUnavailable("memory", "down")

        with monkeypatch.context() as patch:
            patch.setattr(group.store, "beat", down)
            for _ in range(4):
                assert not await web.beat_once()
        await group.store.delete(WEB.key)
        assert await web.beat_once()  # the record is re-created: one re-join
        await group.driver.leave(WEB)
        assert await web.beat_once()  # the member is re-created: another

        seen = scrape(metrics, WEB)
        assert seen["sg_agent_beats_total"] == 3
        # Three different counts, so no counter can stand in for another.
        assert seen["sg_agent_beat_failures_total"] == 4
        assert seen["sg_agent_rejoins_total"] == 2
        assert seen["sg_agent_beat_duration_seconds_count"] == 7  # failed beats included
        assert 0 <= seen["sg_agent_last_success_age_seconds"] < 5
        other = scrape(metrics, DB)
        assert (other["sg_agent_beats_total"], other["sg_agent_beat_failures_total"]) == (1, 0)
        assert other["sg_agent_rejoins_total"] == 0
