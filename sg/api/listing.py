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
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from sg.model import ServiceStatus

__all__ = ["CHUNK_ROWS", "api_row", "etag_of", "listing_response", "matches", "stream_rows"]

#: Rows encoded per chunk of the streamed body (about 90 KiB).
CHUNK_ROWS = 256


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


def listing_response(request: Request, statuses: Sequence[ServiceStatus]) -> Response:
    """``200`` with the streamed rows and their ETag, or ``304`` if the client has them."""
    etag = etag_of(statuses)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if matches(request, etag):
        return Response(status_code=304, headers=headers)
    return StreamingResponse(stream_rows(statuses), media_type="application/json", headers=headers)
