"""sd_notify as systemd sees it: the real agent, a fake $NOTIFY_SOCKET, a real PostgreSQL
behind a proxy that can hang."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.notify import Notifier
from sg import ServiceGroup
from sg.testing import PostgresServer
from tests.support.daemon_harness import AgentProcess, NotifySocket, TcpProxy, agent_config

INTERVAL = 0.3
SERVICES: list[dict[str, str]] = [{"host": "h1", "binary": f"sg-n{i}", "topic": "notify"} for i in range(3)]
# The agent keeps systemd's variables to itself: a check's command never sees them.
SERVICES[1]["check"] = """exec:sh -c 'test -z "$NOTIFY_SOCKET$WATCHDOG_USEC"'"""


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    sock = NotifySocket()
    yield sock
    sock.close()


def via_proxy(url: str, server: PostgresServer, proxy: TcpProxy) -> str:
    return url.replace(f":{server.port}/", f":{proxy.port}/")


def test_notifier_speaks_the_datagram_protocol_to_an_abstract_socket() -> None:
    name = f"sg-test-notify-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        notifier = Notifier.from_env({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "30000000"})
        assert notifier.watchdog_interval == 30.0
        assert notifier.ready("2 services")
        assert sock.recv(4096) == b"READY=1\nSTATUS=2 services"
        assert notifier.reloading()
        reloading = sock.recv(4096).decode().split("\n")
        assert reloading[0] == "RELOADING=1"
        assert reloading[1].startswith("MONOTONIC_USEC=")
        notifier.close()
    # The socket is gone: sending fails quietly, it never raises into the agent.
    assert not notifier.send(WATCHDOG=1)
    # WATCHDOG_USEC meant for another process (WATCHDOG_PID) is not ours.
    assert Notifier.from_env({"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}).watchdog_interval is None
    assert not Notifier.from_env({}).enabled


async def test_ready_after_first_beats_watchdog_only_while_the_store_answers_stopping_on_sigterm(
    tmp_path: Path, sg_postgres: PostgresServer, sg_postgres_url: str, notify: NotifySocket
) -> None:
    async with TcpProxy(sg_postgres.port) as proxy:
        proxy.hang()  # the store does not answer yet
        config = agent_config(
            tmp_path / "sg.toml",
            via_proxy(sg_postgres_url, sg_postgres, proxy),
            SERVICES,
            report_interval=INTERVAL,
            service_down_time=1.5,
            store_timeout=0.5,
        )
        agent = AgentProcess(config, tmp_path / "agent.log", notify, watchdog_usec=5_000_000)
        try:
            # While the store hangs the agent reports status but never READY or WATCHDOG.
            await agent.wait_for_event("agent_starting")
            began = time.monotonic()
            await notify.wait_for("STATUS", since=began, count=2)
            assert notify.with_key("READY") == []
            assert notify.with_key("WATCHDOG") == []
            assert agent.proc.poll() is None

            forwarded = time.monotonic()
            proxy.forward()
            ready = await notify.wait_for("READY", timeout=15)
            assert ready > forwarded
            status = notify.with_key("READY")[0][1]["STATUS"]
            assert status.startswith("3 services: 3 beating, 0 held down by a failed check, 0 failing;")
            async with ServiceGroup.from_urls(sg_postgres_url) as group:
                statuses = await group.list(topic="notify")
            # READY came after every service's first successful beat.
            assert sorted(s.service.binary for s in statuses) == ["sg-n0", "sg-n1", "sg-n2"]
            assert all(s.service.report_count >= 1 for s in statuses)
            assert all(s.is_up for s in statuses)
            await notify.wait_for("WATCHDOG", since=ready, count=2)

            # The store hangs again: after the round in flight, no more watchdog pings.
            proxy.hang()
            hung = time.monotonic()
            grace = 0.5
            await notify.wait_for("STATUS", since=hung + grace, count=2, timeout=15)
            assert notify.with_key("WATCHDOG", since=hung + grace) == []
            assert "failing" in notify.messages[-1][1]["STATUS"]

            recovered = time.monotonic()
            proxy.forward()
            await notify.wait_for("WATCHDOG", since=recovered, timeout=15)

            terminated = time.monotonic()
            agent.signal(signal.SIGTERM)
            assert await agent.wait_exit(5) == 0
            stopping = notify.with_key("STOPPING", since=terminated)
            assert len(stopping) == 1
            async with ServiceGroup.from_urls(sg_postgres_url) as group:
                statuses = await group.list(topic="notify")
            assert all(s.verdict.reason == "left" for s in statuses)
        finally:
            agent.kill()


async def test_sigterm_exits_0_within_a_second_with_a_hung_store_and_a_second_sigterm(
    tmp_path: Path, sg_postgres: PostgresServer, sg_postgres_url: str, notify: NotifySocket
) -> None:
    async with TcpProxy(sg_postgres.port) as proxy:
        config = agent_config(
            tmp_path / "sg.toml",
            via_proxy(sg_postgres_url, sg_postgres, proxy),
            SERVICES,
            report_interval=INTERVAL,
            service_down_time=6.0,
            # Far longer than the stop bound: the bound must not depend on it.
            store_timeout=3.0,
        )
        agent = AgentProcess(config, tmp_path / "agent.log", notify)
        try:
            await notify.wait_for("READY", timeout=15)
            proxy.hang()
            await agent.wait_for_event("beat_failed", timeout=15)
            began = time.monotonic()
            agent.signal(signal.SIGTERM)
            await notify.wait_for("STOPPING", timeout=2)
            agent.signal(signal.SIGTERM)
            code = await agent.wait_exit(5)
            elapsed = time.monotonic() - began
            assert code == 0
            assert agent.events("stop_already_requested")
            # The agent's own bound is 0.9 s; the rest is slack for a loaded test machine.
            assert elapsed < 1.5, f"exit took {elapsed:.2f}s"
        finally:
            agent.kill()


async def test_a_database_newer_than_the_agent_is_a_configuration_error(
    tmp_path: Path, notify: NotifySocket
) -> None:
    import sqlite3

    db = sqlite3.connect(tmp_path / "s.db")
    with db:
        db.execute("CREATE TABLE sg_schema (version INTEGER NOT NULL)")
        db.execute("INSERT INTO sg_schema (version) VALUES (99)")
    db.close()
    config = agent_config(tmp_path / "sg.toml", f"sqlite://{tmp_path}/s.db", SERVICES[:1])
    agent = AgentProcess(config, tmp_path / "agent.log", notify)
    try:
        assert await agent.wait_exit(15) == 78
        errors = agent.events("configuration_error")
        assert len(errors) == 1
        assert "schema version 99, newer than this release" in errors[0]["error"]
        assert notify.with_key("READY") == []
    finally:
        agent.kill()
