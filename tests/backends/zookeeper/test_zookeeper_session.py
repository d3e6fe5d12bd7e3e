"""ZooKeeper sessions: a requested timeout the server bounds is logged with what it
granted; the reconnect backoff is capped by ``reconnect_max``."""

from __future__ import annotations

import time

from structlog.testing import capture_logs

from sg.drivers.zookeeper import ZooKeeperDriver
from sg.testing.zookeeper import ZooKeeperServer
from sg.timings import Timings


async def test_a_session_timeout_the_server_bounds_is_logged(sg_zookeeper: ZooKeeperServer) -> None:
    ceiling = sg_zookeeper.tick_time * sg_zookeeper.max_session_ticks / 1000
    requested = ceiling * 3
    driver = ZooKeeperDriver.from_url(
        sg_zookeeper.url(f"bounded-{time.monotonic_ns()}", session_timeout=requested),
        Timings(driver_timeout=5),
    )
    with capture_logs() as logs:
        await driver.open()
        try:
            granted = driver.client.negotiated_timeout
        finally:
            await driver.close()
    assert granted == ceiling
    bounded = [e for e in logs if e["event"] == "zookeeper_session_timeout_bounded"]
    assert bounded == [
        {
            "event": "zookeeper_session_timeout_bounded",
            "log_level": "warning",
            "requested": requested,
            "negotiated": ceiling,
        }
    ]


async def test_a_granted_session_timeout_is_not_logged(sg_zookeeper: ZooKeeperServer) -> None:
    driver = ZooKeeperDriver.from_url(
        sg_zookeeper.url(f"granted-{time.monotonic_ns()}", session_timeout=2), Timings(driver_timeout=5)
    )
    with capture_logs() as logs:
        await driver.open()
        try:
            assert driver.client.negotiated_timeout == 2
        finally:
            await driver.close()
    assert [e for e in logs if e["event"] == "zookeeper_session_timeout_bounded"] == []


async def test_reconnect_max_caps_the_backoff_of_the_session(sg_zookeeper: ZooKeeperServer) -> None:
    def cap(**options: float) -> float:
        return ZooKeeperDriver.from_url(sg_zookeeper.url("c", **options), Timings()).options.reconnect_cap

    assert cap(session_timeout=4, reconnect_max=0.3) == 0.3
    assert cap(session_timeout=2) == 0.5  # a quarter of the session, at most 1 s
    assert cap(session_timeout=20) == 1.0
    driver = ZooKeeperDriver.from_url(
        sg_zookeeper.url(f"cap-{time.monotonic_ns()}", session_timeout=2, reconnect_max=0.3),
        Timings(driver_timeout=5),
    )
    await driver.open()
    try:
        # The session the driver runs on is the one that waits between attempts.
        assert driver.client.session.reconnect_cap == 0.3
    finally:
        await driver.close()
