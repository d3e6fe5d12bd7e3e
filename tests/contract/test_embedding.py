"""What a downstream project sees: the pytest plugin, embedded join, log rendering."""

from __future__ import annotations

import io
import json
import time

import pytest
from structlog.testing import capture_logs

from sg import Member, ServiceGroup
from sg.drivers.memory import expire_member
from sg.logsetup import configure_logging
from sg.model import ServiceKey


async def test_memory_group_fixture_joins_and_leaves(sg_memory_group: ServiceGroup) -> None:
    async with sg_memory_group.join("my-worker", "workers", host="h1") as hb:
        assert hb.ready.is_set()
        assert (await sg_memory_group.get("h1", "my-worker")).is_up
    assert (await sg_memory_group.get("h1", "my-worker")).verdict.reason == "left"


async def test_lost_member_reads_not_joined_then_rejoins(sg_memory_group: ServiceGroup) -> None:
    async with sg_memory_group.join("my-worker", "workers", host="h1") as hb:
        expire_member(sg_memory_group.driver.shared_name, ServiceKey("h1", "my-worker"))  # type: ignore[attr-defined]
        status = await sg_memory_group.get("h1", "my-worker")
        assert (status.verdict.state, status.verdict.reason) == ("down", "not_joined")
        with capture_logs() as logs:
            assert await hb.beat_once()
        assert hb.stats.rejoins == 1
        assert [e["event"] for e in logs] == ["service_rejoined"]
        assert (await sg_memory_group.get("h1", "my-worker")).is_up


async def test_clock_skew_is_logged_once_when_it_passes_the_limit(
    sg_memory_group: ServiceGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    hb = sg_memory_group.heartbeat(Member(host="h", binary="b", topic="t"))
    assert await hb.beat_once()
    assert hb.stats.clock_skew is not None
    assert abs(hb.stats.clock_skew) < sg_memory_group.timings.max_clock_skew
    # The memory store stamps with time.time() too, so skew the heartbeat's view only.
    import sg.heartbeat as heartbeat_module

    real = time.time
    fake = type(
        "T", (), {"time": staticmethod(lambda: real() + 30), "monotonic": staticmethod(time.monotonic)}
    )
    monkeypatch.setattr(heartbeat_module, "time", fake)
    with capture_logs() as logs:
        await hb.beat_once()
        await hb.beat_once()
    skew = [e for e in logs if e["event"] == "clock_skew"]
    assert len(skew) == 1
    assert skew[0]["skew_s"] < -29


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_logs_are_json_off_a_terminal_and_key_value_on_one() -> None:
    import structlog

    try:
        pipe = io.StringIO()
        configure_logging("info", stream=pipe)
        structlog.get_logger("t").info("beat_failed", backend="store", failures=2)
        record = json.loads(pipe.getvalue())
        assert (record["event"], record["backend"], record["failures"]) == ("beat_failed", "store", 2)

        tty = _Terminal()
        configure_logging("info", stream=tty)
        structlog.get_logger("t").info("beat_failed", backend="store", failures=2)
        line = tty.getvalue()
        assert "beat_failed" in line
        assert "backend=store" in line
        assert "failures=2" in line
    finally:
        structlog.reset_defaults()


def test_stdlib_logging_of_dependencies_is_rendered_like_ours() -> None:
    import logging

    import structlog

    pipe = io.StringIO()
    try:
        configure_logging("info", stream=pipe)
        logging.getLogger("aiozk.connection").warning("Aborting connection to %s", "127.0.0.1:2181")
        logging.getLogger("aiozk.connection").info("chatty detail")
        lines = [json.loads(line) for line in pipe.getvalue().splitlines()]
        assert len(lines) == 1
        assert lines[0]["event"] == "Aborting connection to 127.0.0.1:2181"
        assert lines[0]["logger"] == "aiozk.connection"
        assert lines[0]["level"] == "warning"
    finally:
        structlog.reset_defaults()
        root = logging.getLogger()
        for h in [h for h in root.handlers if getattr(h, "_sg_handler", False)]:
            root.removeHandler(h)
