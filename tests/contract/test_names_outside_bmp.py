"""Names with characters above U+FFFF join, read up, leave and read down on every
driver (issue 10, defect 2: ZooKeeper refused them on every beat)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sg import Member, ServiceGroup
from tests.support.backends import REPORT_INTERVAL, SERVICE_DOWN_TIME

NAMES = [
    Member("host-🚀", "sg-compute", "compute"),
    Member("h1", "\U0001d51f\U0001d526\U0001d52b", "compute"),  # Fraktur "bin"
    Member("h2", "sg-compute", "topic-\U0001f600"),
    Member("\U00010000", "\U0010fffd", "\U0001d11e" * 255),
]


@pytest.mark.parametrize("member", NAMES, ids=lambda m: ascii(m.host + m.binary)[:30])
async def test_supplementary_plane_names_join_and_leave(
    tmp_path: Path, driver_url: str, member: Member
) -> None:
    async with ServiceGroup.from_urls(
        f"sqlite://{tmp_path}/s.db",
        driver_url,
        report_interval=REPORT_INTERVAL,
        service_down_time=SERVICE_DOWN_TIME,
    ) as group:
        assert await group.heartbeat(member).beat_once()
        status = await group.get(member.host, member.binary)
        assert (status.verdict.state, status.verdict.reason) == ("up", "ok"), status.verdict
        assert status.service.topic == member.topic
        await group.leave(member)
        status = await group.get(member.host, member.binary)
        assert status.verdict.state == "down", status.verdict
