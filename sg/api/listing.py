"""The answer of ``GET /v1/services``: rows, a weak ETag for pollers, a streamed body.

A listing of 1,000 services was built twice over and encoded by the stdlib: a
20-key ``ServiceStatus.as_dict`` per row, then a second dict of the API's fields,
then ``json.dumps`` of the whole answer (54 requests/s). Here each row is one dict
of :data:`~sg.api.openapi.API_FIELDS`, built straight from the status, encoded by
orjson a chunk at a time while the body is sent.

The ETag is *weak* (``W/"..."``): it covers every field except ``age`` and
``updated_at``, which move on every heartbeat. Two answers with the same ETag say
the same about every service (same state, reason, status, version, ...), which is
what a poller sending ``If-None-Match`` wants to know; it gets ``304`` until then.

Requests for the same listing that arrive while one is being read share that read
(:class:`SingleFlight`), and its ETag and encoded body: N pollers at once cost one
store read and one encoding, not N. Nothing is kept once the read is answered, so a
shared answer is never older than the read itself. A listing of up to
:data:`ONE_BUFFER_ROWS` rows is one buffer (one ``send``, with a Content-Length);
a larger one streams a chunk at a time, so its encoding never doubles in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from typing import Any

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from sg.model import ServiceStatus

__all__ = [
    "CHUNK_ROWS",
    "ONE_BUFFER_ROWS",
    "Listing",
    "SingleFlight",
    "api_row",
    "encode_rows",
    "etag_of",
    "listing_response",
    "matches",
    "stream_rows",
]

#: Rows encoded per chunk of the streamed body (about 90 KiB).
CHUNK_ROWS = 256
#: Listings up to this many rows (about 3.6 MiB) are sent as one buffer; larger ones stream.
ONE_BUFFER_ROWS = 10_000


def api_row(status: ServiceStatus) -> dict[str, Any]:
    """A service as the API shows it: the keys of ``API_FIELDS``, in that order, with the
    values ``ServiceStatus.as_dict`` gives them (``tests/contract/test_api_listing.py``
    holds the two equal)."""
    s, v = status.service, status.verdict
    age = v.age
    # orjson encodes an aware datetime as isoformat() does (+00:00, microseconds when set).
    return {
        "id": s.id,
        "uuid": s.uuid,
        "host": s.host,
        "binary": s.binary,
        "topic": s.topic,
        "status": "disabled" if s.disabled else "enabled",
        "state": v.state,
        "reason": v.reason,
        "age": None if age is None else round(age, 3),
        "updated_at": s.updated_at,
        "created_at": s.created_at,
        "disabled_reason": s.disabled_reason,
        "forced_down": s.forced_down,
        "version": s.version,
        "check_failure": s.check_failure,
        "zone": s.zone,
        "driver": s.driver,
    }


def etag_of(statuses: Sequence[ServiceStatus]) -> str:
    """A weak ETag over every field of the rows but ``age`` and ``updated_at``."""
    stable = [
        (
            s.service.id,
            s.service.uuid,
            s.service.host,
            s.service.binary,
            s.service.topic,
            s.service.disabled,
            s.verdict.state,
            s.verdict.reason,
            s.service.created_at,
            s.service.disabled_reason,
            s.service.forced_down,
            s.service.version,
            s.service.check_failure,
        )
        for s in statuses
    ]
    digest = hashlib.blake2b(orjson.dumps(stable), digest_size=16).hexdigest()
    return f'W/"{digest}"'


def matches(request: Request, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, RFC 9110 13.1.2)."""
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    if header.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in header.split(","))


async def stream_rows(statuses: Sequence[ServiceStatus]) -> AsyncIterator[bytes]:
    """``{"services":[...]}``, a chunk of :data:`CHUNK_ROWS` rows at a time."""
    yield b'{"services":['
    for start in range(0, len(statuses), CHUNK_ROWS):
        chunk = orjson.dumps([api_row(s) for s in statuses[start : start + CHUNK_ROWS]])
        # Each chunk is a JSON array: drop its brackets, join the chunks with commas.
        yield (b"," if start else b"") + chunk[1:-1]
    yield b"]}"


def encode_rows(statuses: Sequence[ServiceStatus]) -> bytes:
    """``{"services":[...]}`` in one buffer: the bytes :func:`stream_rows` yields, joined."""
    return orjson.dumps({"services": [api_row(s) for s in statuses]})


class Listing:
    """One read's rows, with their ETag and encoded body computed at most once each
    (the requests sharing the read share them too)."""

    __slots__ = ("_body", "_etag", "statuses")

    def __init__(self, statuses: Sequence[ServiceStatus]) -> None:
        self.statuses = statuses
        self._etag: str | None = None
        self._body: bytes | None = None

    @property
    def etag(self) -> str:
        """The weak ETag of the rows (:func:`etag_of`)."""
        if self._etag is None:
            self._etag = etag_of(self.statuses)
        return self._etag

    @property
    def body(self) -> bytes:
        """The whole answer in one buffer (:func:`encode_rows`)."""
        if self._body is None:
            self._body = encode_rows(self.statuses)
        return self._body


class _Flight:
    __slots__ = ("done", "error", "listing")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.listing: Listing | None = None
        self.error: Exception | None = None


class SingleFlight:
    """Listings by key, each read once for all the requests that want it at the same time.

    The first request for a key reads; requests for the same key arriving before that
    read ends wait for it and get its :class:`Listing` (or its error: a store that is
    down is asked once, not once per poller). The flight is forgotten as soon as it
    lands. If the reading request is cancelled (its client left), the waiting ones
    read again, one of them for the others.
    """

    def __init__(self) -> None:
        self._flights: dict[Hashable, _Flight] = {}

    def waiting(self, key: Hashable) -> int:
        """How many requests wait for the read of ``key`` in flight now (0 without one)."""
        flight = self._flights.get(key)
        return 0 if flight is None else flight.done.statistics().tasks_waiting

    async def get(self, key: Hashable, read: Callable[[], Awaitable[Sequence[ServiceStatus]]]) -> Listing:
        """The listing of ``key``: the one being read now, else ``read()``'s."""
        while (flight := self._flights.get(key)) is not None:
            await flight.done.wait()
            if flight.listing is not None:
                return flight.listing
            if flight.error is not None:
                raise flight.error
            # The reader was cancelled before it had an answer: take its place.
        flight = self._flights[key] = _Flight()
        try:
            flight.listing = Listing(await read())
        except Exception as exc:
            flight.error = exc
            raise
        finally:
            del self._flights[key]
            flight.done.set()
        return flight.listing


def listing_response(request: Request, listing: Listing) -> Response:
    """``200`` with the rows and their ETag, or ``304`` (nothing encoded) if the client has them."""
    etag = listing.etag
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if matches(request, etag):
        return Response(status_code=304, headers=headers)
    if len(listing.statuses) <= ONE_BUFFER_ROWS:
        return Response(listing.body, media_type="application/json", headers=headers)
    return StreamingResponse(stream_rows(listing.statuses), media_type="application/json", headers=headers)
