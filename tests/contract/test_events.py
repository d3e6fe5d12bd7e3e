"""``GET /v1/events`` over a real ServiceGroup (SQLite + db), served by uvicorn and read
with httpx as a script would: access, query checks, snapshot, changes, removals,
keep-alives, the end of the stream when the client goes away, and the bounded queue."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette

from sg.api.app import create_app
from sg.api.events import EventStream
from sg.api.handlers import service_json
from sg.api.settings import ApiSettings
from sg.config import Settings
from sg.group import ServiceGroup
from sg.model import ServiceKey
from tests.support.interop import serve
from tests.support.waiting import eventually

REPORT_INTERVAL = 0.2
DOWN_TIME = 1.0
TOKEN = "events-test-token-0123456789"
HEARTBEAT = 0.5
REFRESH = 0.5
#: Slack for a loaded 2-core machine on top of each configured bound.
MARGIN = 2.0
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def group(tmp_path: Path) -> AsyncIterator[ServiceGroup]:
    async with ServiceGroup.from_urls(
        f"sqlite://{tmp_path}/services.db", report_interval=REPORT_INTERVAL, service_down_time=DOWN_TIME
    ) as g:
        yield g


class Events:
    """Reads one SSE stream: (event, data) pairs, comments as ("comment", text)."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()

    async def next(self, timeout: float) -> tuple[str, Any]:
        event, data = "message", []
        with anyio.fail_after(timeout):
            async for line in self.lines:
                if line.startswith(":"):
                    return "comment", line[1:].strip()
                if line == "":
                    if data:
                        return event, json.loads("\n".join(data))
                    continue
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if field == "event":
                    event = value
                elif field == "data":
                    data.append(value)
                elif field == "retry":
                    return "retry", int(value)
        raise AssertionError("the stream ended")

    async def until(self, accept: Any, timeout: float, what: str) -> tuple[str, Any]:
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{what}: not within {timeout:g}s; saw {seen}")
            try:
                item = await self.next(left)
            except TimeoutError:
                raise AssertionError(f"{what}: not within {timeout:g}s; saw {seen}") from None
            if accept(*item):
                return item
            seen.append(item)


def app_for(
    group: ServiceGroup, *, open_reads: bool = False, **options: Any
) -> tuple[Starlette, EventStream]:
    """sg-api itself over ``group``, with these EventStream options; and its stream."""
    api = ApiSettings(tokens=(TOKEN,), open_reads=open_reads)
    app = create_app(Settings(), api, group=group, event_options=options)
    stream: EventStream = app.state.events
    return app, stream


async def test_access_and_query_are_checked_before_streaming(group: ServiceGroup) -> None:
    app, stream = app_for(group)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        refused = await client.get("/v1/events")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        wrong = await client.get("/v1/events", headers={"Authorization": "Bearer not-the-token-at-all"})
        assert wrong.status_code == 401
        # OpenStack clients' header works too; the `none` plugin's placeholder does not.
        assert (await client.get("/v1/events", headers={"X-Auth-Token": "notused"})).status_code == 401
        unknown = await client.get("/v1/events", params={"state": "up"}, headers=AUTH)
        assert unknown.status_code == 400
        assert unknown.json()["error"]["field"] == "state"
        bad = await client.get("/v1/events", params={"topic": " x"}, headers=AUTH)
        assert bad.status_code == 400
        assert bad.json()["error"]["field"] == "topic"
        twice = await client.get("/v1/events?topic=a&topic=b", headers=AUTH)
        assert twice.status_code == 400
        assert stream.clients == 0


async def test_stream_sends_snapshot_changes_removals_and_keepalives(group: ServiceGroup) -> None:
    app, stream = app_for(group, heartbeat=HEARTBEAT, refresh=REFRESH)
    async with (
        group.join("sg-worker", "workers", host="w1") as hb,
        serve(app) as url,
        httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(10, read=None)) as client,
    ):
        await hb.ready.wait()
        async with client.stream("GET", "/v1/events", headers={"X-Auth-Token": TOKEN}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            assert "content-length" not in response.headers
            events = Events(response)
            assert await events.next(5) == ("retry", 3000)
            kind, snapshot = await events.next(5)
            assert kind == "snapshot"
            [row] = snapshot["services"]
            assert (row["host"], row["binary"], row["topic"], row["state"]) == (
                "w1",
                "sg-worker",
                "workers",
                "up",
            )
            assert {"uuid", "status", "reason", "age", "forced_down", "disabled_reason", "version"} <= set(
                row
            )
            assert stream.clients == 1

            # Nothing happens: a keep-alive comment within the heartbeat.
            started = time.monotonic()
            assert await events.next(HEARTBEAT + MARGIN) == ("comment", "keepalive")
            assert time.monotonic() - started <= HEARTBEAT + MARGIN

            # A disable changes no state: the refresh sends it.
            await group.set_disabled(ServiceKey("w1", "sg-worker"), True, "maintenance")
            _, change = await events.until(
                lambda k, d: k == "change", REFRESH + MARGIN, "the disable, as a change"
            )
            assert change["previous"] == "up"
            assert change["service"]["state"] == "up"
            assert change["service"]["status"] == "disabled"
            assert change["service"]["disabled_reason"] == "maintenance"

        # A second client sees a state change.
        async with client.stream("GET", "/v1/events", headers=AUTH) as response:
            events = Events(response)
            await events.until(lambda k, d: k == "snapshot", 5, "snapshot")
            await group.set_forced_down(ServiceKey("w1", "sg-worker"), True)
            _, change = await events.until(
                lambda k, d: k == "change" and d["service"]["state"] == "down",
                REPORT_INTERVAL + MARGIN,
                "down",
            )
            assert change["previous"] == "up"
            assert change["service"]["reason"] == "forced_down"
    # The join is over: the service stays down and can be deleted while a stream is open.
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(10, read=None)) as client,
        client.stream("GET", "/v1/events", params={"topic": "workers"}, headers=AUTH) as response,
    ):
        events = Events(response)
        _, snapshot = await events.until(lambda k, d: k == "snapshot", 5, "snapshot")
        assert [r["state"] for r in snapshot["services"]] == ["down"]
        await group.delete(ServiceKey("w1", "sg-worker"))
        _, removed = await events.until(lambda k, d: k == "removed", 5, "removed")
        assert removed["service"]["host"] == "w1"

    async def clients() -> int:
        return stream.clients

    # The client went away: the stream (and its watch) ended on the server.
    await eventually(clients, lambda n: n == 0, 5, "streams closed")


async def test_topic_filter_and_open_reads(group: ServiceGroup) -> None:
    app, _ = app_for(group, open_reads=True)
    async with (
        group.join("sg-a", "alpha", host="h1") as a,
        group.join("sg-b", "beta", host="h1") as b,
        serve(app) as url,
        httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(10, read=None)) as client,
    ):
        await a.ready.wait()
        await b.ready.wait()
        async with client.stream("GET", "/v1/events", params={"topic": "beta"}) as response:
            assert response.status_code == 200
            _, snapshot = await Events(response).until(lambda k, d: k == "snapshot", 5, "snapshot")
            assert [r["binary"] for r in snapshot["services"]] == ["sg-b"]


async def test_a_client_too_slow_for_its_queue_is_let_go(group: ServiceGroup) -> None:
    stream = EventStream(group, row=service_json, max_queue=2)
    async with group.join("sg-worker", "workers", host="w1") as hb:
        await hb.ready.wait()
        snapshot = await group.list()
        out, never_read = anyio.create_memory_object_stream[bytes](2)
        async with never_read:
            with anyio.fail_after(DOWN_TIME + MARGIN + 5):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(stream.pump, out, snapshot)
                    # retry + snapshot fill the queue; the next change cannot be queued.
                    await group.set_forced_down(ServiceKey("w1", "sg-worker"), True)
            # pump returned by itself (the task group ended) and nothing was read.
            assert never_read.statistics().current_buffer_used == 2


async def test_the_stream_ends_as_soon_as_the_client_goes_away(group: ServiceGroup) -> None:
    # A keep-alive far away: only the client's disconnect can end this stream soon.
    app, stream = app_for(group, heartbeat=60)

    async def clients() -> int:
        return stream.clients

    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        async with client.stream("GET", "/v1/events", headers=AUTH) as response:
            await Events(response).until(lambda k, d: k == "snapshot", 5, "snapshot")
            assert stream.clients == 1
        _, took = await eventually(clients, lambda n: n == 0, 5, "the stream ended")
        print(f"client gone to stream ended: {took:.3f}s")


async def test_streams_beyond_max_clients_are_refused(group: ServiceGroup) -> None:
    app, _ = app_for(group, max_clients=1)
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
        client.stream("GET", "/v1/events", headers=AUTH) as first,
    ):
        await Events(first).until(lambda k, d: k == "snapshot", 5, "snapshot")
        second = await client.get("/v1/events", headers=AUTH)
        assert second.status_code == 503
        assert "at most 1" in second.json()["error"]["message"]


async def test_streams_are_counted_by_route_but_kept_out_of_the_latency_histogram(
    group: ServiceGroup,
) -> None:
    app, _ = app_for(group)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        async with client.stream("GET", "/v1/events", headers=AUTH) as response:
            await Events(response).until(lambda k, d: k == "snapshot", 5, "snapshot")
        assert (await client.get("/v1/services", headers=AUTH)).status_code == 200

        async def metrics() -> str:
            return (await client.get("/metrics", headers=AUTH)).text

        # The stream is counted once the server has seen the client go.
        text, _ = await eventually(
            metrics,
            lambda t: 'sg_api_requests_total{method="GET",route="/v1/events",status="200"} 1.0' in t,
            5,
            "the stream counted under its route",
        )
        assert 'sg_api_request_duration_seconds_count{method="GET",route="/v1/services"} 1.0' in text
        assert 'route="/v1/events"' not in "".join(
            line for line in text.splitlines() if line.startswith("sg_api_request_duration")
        )
