"""GET /v1/services: requests for the same listing at the same time share one read;
a 304 encodes nothing; a listing is one buffer up to ONE_BUFFER_ROWS rows.

Counted on a real SQLite store, wrapped to count its listing reads and to hold the
first one open until every request has arrived; nothing is mocked below the store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.requests import Request

from sg import ServiceGroup, Settings
from sg.api import listing as listing_module
from sg.api.app import create_app
from sg.api.listing import Listing, SingleFlight, listing_response, stream_rows
from sg.backends import Backends, load_driver
from sg.errors import BackendUnavailable
from sg.store.base import Survey, SurveyQuery
from sg.store.sqlite import SQLiteStore
from sg.timings import Timings
from tests.support.api import AUTH, TIMINGS, api_settings, beat, client_for

REQUESTS = 6


class _GatedStore(SQLiteStore):
    """The SQLite store; each listing read (``survey``) is counted and waits for ``release``."""

    reads: int
    release: anyio.Event
    fail: bool

    async def survey(self, query: SurveyQuery) -> Survey:
        self.reads += 1
        await self.release.wait()
        if self.fail:
            raise BackendUnavailable("sqlite", "the test took the store away")
        return await super().survey(query)


def _gated(path: Path) -> _GatedStore:
    timings = Timings(**TIMINGS)
    store = _GatedStore.from_url(f"sqlite://{path}", timings)
    store.reads, store.fail = 0, False
    store.release = anyio.Event()
    store.release.set()
    return store


async def _group(path: Path) -> tuple[ServiceGroup, _GatedStore]:
    store = _gated(path)
    timings = Timings(**TIMINGS)
    return ServiceGroup(Backends(store, load_driver("db://", timings), timings)), store


async def _concurrently(
    client: httpx.AsyncClient, flights: SingleFlight, store: _GatedStore, url: str, key: Any
) -> list[httpx.Response]:
    """``REQUESTS`` requests for ``url`` at once; the store's first read is held until
    the other requests wait for it, then released."""
    store.reads = 0
    store.release = anyio.Event()
    answers: list[httpx.Response] = []

    async def one() -> None:
        answers.append(await client.get(url, headers=AUTH))

    async with anyio.create_task_group() as tg:
        for _ in range(REQUESTS):
            tg.start_soon(one)
        with anyio.fail_after(10):
            # Without the single flight, every request reads (and waits here) on its own.
            while store.reads < 1 or (store.reads < REQUESTS and flights.waiting(key) < REQUESTS - 1):
                await anyio.sleep(0.005)
        store.release.set()
    return answers


async def test_concurrent_identical_listings_share_one_store_read(tmp_path: Path) -> None:
    group, store = await _group(tmp_path / "sf.db")
    async with group:
        for i in range(20):
            await beat(group, f"h{i:02d}")
        app = create_app(Settings(), api_settings(), group=group)
        flights = app.state.context.listings
        async with client_for(app) as client:
            answers = await _concurrently(client, flights, store, "/v1/services", (None, None, None, None))
            assert store.reads == 1
            assert [r.status_code for r in answers] == [200] * REQUESTS
            bodies = {r.content for r in answers}
            assert len(bodies) == 1  # the same read, encoded once
            assert len(answers[0].json()["services"]) == 20
            assert len({r.headers["etag"] for r in answers}) == 1

            # Nothing is kept once a read lands: the next request reads again.
            store.reads = 0
            for _ in range(3):
                assert (await client.get("/v1/services", headers=AUTH)).status_code == 200
            assert store.reads == 3

            # Another query is another read, even at the same time.
            store.reads = 0
            store.release = anyio.Event()

            async def get(url: str) -> None:
                assert (await client.get(url, headers=AUTH)).status_code == 200

            async with anyio.create_task_group() as tg:
                for url in ("/v1/services", "/v1/services?topic=compute"):
                    tg.start_soon(get, url)
                with anyio.fail_after(10):
                    while store.reads < 2:
                        await anyio.sleep(0.005)
                store.release.set()
            assert store.reads == 2


async def test_pollers_at_once_share_the_read_and_get_304(tmp_path: Path) -> None:
    group, store = await _group(tmp_path / "sf.db")
    async with group:
        await beat(group, "c1")
        app = create_app(Settings(), api_settings(), group=group)
        async with client_for(app) as client:
            etag = (await client.get("/v1/services?state=up", headers=AUTH)).headers["etag"]
            poll = {**AUTH, "If-None-Match": etag}
            store.reads = 0
            store.release = anyio.Event()
            answers: list[httpx.Response] = []

            async def one() -> None:
                answers.append(await client.get("/v1/services?state=up", headers=poll))

            flights = app.state.context.listings
            async with anyio.create_task_group() as tg:
                for _ in range(REQUESTS):
                    tg.start_soon(one)
                with anyio.fail_after(10):
                    key = (None, None, None, "up")
                    while store.reads < 1 or (store.reads < REQUESTS and flights.waiting(key) < REQUESTS - 1):
                        await anyio.sleep(0.005)
                store.release.set()
            assert store.reads == 1
            assert [r.status_code for r in answers] == [304] * REQUESTS


async def test_a_failed_read_is_the_answer_of_every_request_sharing_it(tmp_path: Path) -> None:
    group, store = await _group(tmp_path / "sf.db")
    async with group:
        await beat(group, "c1")
        app = create_app(Settings(), api_settings(), group=group)
        async with client_for(app) as client:
            store.fail = True
            answers = await _concurrently(
                client, app.state.context.listings, store, "/v1/services", (None, None, None, None)
            )
            assert store.reads == 1  # a store that is down is asked once, not once per request
            assert [r.status_code for r in answers] == [503] * REQUESTS
            store.fail = False
            assert (await client.get("/v1/services", headers=AUTH)).status_code == 200


async def test_a_cancelled_reader_hands_the_read_to_a_waiting_request() -> None:
    flights = SingleFlight()
    reads: list[str] = []
    hold = anyio.Event()

    async def read(who: str) -> list[Any]:
        reads.append(who)
        if who == "first":
            await hold.wait()
        return []

    got: list[int] = []

    async def wait_for_it() -> None:
        listing = await flights.get("k", lambda: read("second"))
        got.append(len(listing.statuses))

    async with anyio.create_task_group() as tg:
        first = anyio.CancelScope()

        async def leader() -> None:
            with first:
                await flights.get("k", lambda: read("first"))

        tg.start_soon(leader)
        with anyio.fail_after(10):
            while reads != ["first"]:
                await anyio.sleep(0.005)
        tg.start_soon(wait_for_it)
        with anyio.fail_after(10):
            while flights.waiting("k") < 1:
                await anyio.sleep(0.005)
        first.cancel()
    assert reads == ["first", "second"]
    assert got == [0]
    assert flights.waiting("k") == 0


@pytest.mark.parametrize("error", [BackendUnavailable("sqlite", "down"), ValueError("bug")])
async def test_an_error_is_raised_to_the_waiting_requests_too(error: Exception) -> None:
    flights = SingleFlight()
    hold = anyio.Event()
    calls = 0

    async def read() -> list[Any]:
        nonlocal calls
        calls += 1
        await hold.wait()
        raise error

    seen: list[BaseException] = []

    async def one() -> None:
        try:
            await flights.get("k", read)
        except Exception as exc:
            seen.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one)
        with anyio.fail_after(10):
            while calls < 1 or flights.waiting("k") < 2:
                await anyio.sleep(0.005)
        hold.set()
    assert calls == 1
    assert [type(e) for e in seen] == [type(error)] * 3


def _request(if_none_match: str | None) -> Request:
    headers = [] if if_none_match is None else [(b"if-none-match", if_none_match.encode())]
    return Request({"type": "http", "method": "GET", "path": "/v1/services", "headers": headers})


async def test_a_304_encodes_nothing_and_a_200_is_one_buffer(mem_group: ServiceGroup) -> None:
    for i in range(3):
        await beat(mem_group, f"h{i}")
    statuses = await mem_group.list()
    listing = Listing(statuses)
    not_modified = listing_response(_request(listing.etag), listing)
    assert not_modified.status_code == 304
    assert listing._body is None  # the poller's answer never encoded the rows
    full = listing_response(_request(None), listing)
    assert full.status_code == 200
    assert full.body == listing.body
    assert full.headers["content-length"] == str(len(listing.body))
    assert json.loads(listing.body) == json.loads(b"".join([c async for c in stream_rows(statuses)]))


async def test_a_listing_larger_than_one_buffer_streams(
    mem_group: ServiceGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing_module, "ONE_BUFFER_ROWS", 2)
    for i in range(3):
        await beat(mem_group, f"h{i}")
    async with client_for(create_app(Settings(), api_settings(), group=mem_group)) as client:
        r = await client.get("/v1/services", headers=AUTH)
        assert r.status_code == 200
        assert "content-length" not in r.headers
        assert [s["host"] for s in r.json()["services"]] == ["h0", "h1", "h2"]
