"""``GET /v1/events``: the services' state changes as Server-Sent Events.

One stream per client, fed by ``ServiceGroup.watch()``::

    retry: 3000

    event: snapshot
    data: {"services": [ROW, ...]}

    event: change
    data: {"service": ROW, "previous": "up"}

    event: removed
    data: {"service": ROW}

    : keepalive

``ROW`` is the API's JSON service row (``GET /v1/services``). ``snapshot`` is sent
once, first: every service at connect. ``change`` carries a service whose state
changed (``previous`` is ``null`` for a service registered since) or, within
``refresh`` seconds, whose other shown fields changed (disabled, forced down, reason,
version; ``previous`` is then its unchanged state); ``removed`` one whose record was
deleted. A comment line goes out after every ``heartbeat`` seconds
without an event, so proxies keep the connection and clients notice a dead one.

Each client has a bounded queue. A client too slow to drain it is disconnected
rather than sent a partial history: it reconnects and gets a fresh ``snapshot``, so
nothing is lost. Scripts can follow the stream too::

    curl -N -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8775/v1/events?topic=compute
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from sg.api.errors import ApiError
from sg.errors import BackendUnavailable
from sg.group import ServiceGroup
from sg.lazylog import get_logger
from sg.model import ServiceKey, ServiceStatus, State, validate_name

__all__ = [
    "DEFAULT_HEARTBEAT",
    "DEFAULT_MAX_CLIENTS",
    "DEFAULT_MAX_QUEUE",
    "DEFAULT_REFRESH",
    "EventStream",
    "sse",
]

log = get_logger("sg.api.events")

#: Seconds without an event after which a keep-alive comment is sent.
DEFAULT_HEARTBEAT = 15.0
#: Seconds between listings that find changes other than the state (a disable, a
#: force-down that does not change the state, a new version): watch() reports states only.
DEFAULT_REFRESH = 5.0
#: Encoded events buffered per client before it counts as too slow.
DEFAULT_MAX_QUEUE = 1000
#: Concurrent streams; each runs its own watch (one listing per poll interval).
DEFAULT_MAX_CLIENTS = 100
#: Milliseconds an EventSource client waits before reconnecting.
RETRY_MS = 3000
KEEPALIVE = b": keepalive\n\n"

#: Fills a client's queue until it returns; the stream ends once the queue is drained.
Producer = Callable[[MemoryObjectSendStream[bytes]], Awaitable[None]]


def sse(event: str, data: object) -> bytes:
    """One Server-Sent Event; ``data`` as compact JSON on one line (JSON escapes newlines)."""
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event}\ndata: {payload}\n\n".encode()


class _EventResponse(Response):
    """Streams what a producer puts in a bounded queue; ends when the client goes away,
    when the producer ends (after the queue is drained), or on a write error."""

    def __init__(self, produce: Producer, *, heartbeat: float, max_queue: int) -> None:
        super().__init__(
            media_type="text/event-stream",
            headers={
                "Cache-Control": "no-cache",
                # nginx buffers responses unless told not to: events would arrive late.
                "X-Accel-Buffering": "no",
            },
        )
        # No body was given, so Response declared Content-Length: 0; a stream has none.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self._produce = produce
        self._heartbeat = heartbeat
        self._max_queue = max_queue

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        out, queue = anyio.create_memory_object_stream[bytes](self._max_queue)
        async with anyio.create_task_group() as tg:

            async def until_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                tg.cancel_scope.cancel()

            async def produce() -> None:
                async with out:
                    await self._produce(out)

            tg.start_soon(until_disconnect)
            tg.start_soon(produce)
            start = {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            # OSError: the client is gone (uvicorn may raise on a write to a closed socket).
            with contextlib.suppress(OSError):
                await send(start)
                await self._write(queue, send)
            tg.cancel_scope.cancel()

    async def _write(self, queue: MemoryObjectReceiveStream[bytes], send: Send) -> None:
        async with queue:
            while True:
                chunk = KEEPALIVE
                with anyio.move_on_after(self._heartbeat):
                    try:
                        chunk = await queue.receive()
                    except anyio.EndOfStream:
                        break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class EventStream:
    """The ``GET /v1/events`` endpoint over one :class:`ServiceGroup`.

    The route table (:mod:`sg.api.routes`) checks the token before :meth:`endpoint`
    runs; errors are raised as :class:`~sg.api.errors.ApiError` (or the library's
    errors) for the app's exception handlers. ``row`` is how a service is shown (the
    API's JSON row). Query: ``topic`` (optional) limits the stream to one topic.
    """

    def __init__(
        self,
        group: ServiceGroup,
        *,
        row: Callable[[ServiceStatus], dict[str, Any]],
        heartbeat: float = DEFAULT_HEARTBEAT,
        max_queue: int = DEFAULT_MAX_QUEUE,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        refresh: float = DEFAULT_REFRESH,
    ) -> None:
        if heartbeat <= 0:
            raise ValueError(f"heartbeat must be positive, not {heartbeat!r}")
        if refresh <= 0:
            raise ValueError(f"refresh must be positive, not {refresh!r}")
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, not {max_queue!r}")
        self.group = group
        self.heartbeat = heartbeat
        self.max_queue = max_queue
        self.max_clients = max_clients
        self.refresh = refresh
        self.row = row
        #: Streams open now.
        self.clients = 0

    async def endpoint(self, request: Request) -> Response:
        """Check the query, take the snapshot, then stream (the token was checked before)."""
        topic: str | None = None
        for key, value in request.query_params.multi_items():
            if key != "topic":
                raise ApiError(400, f"unknown query parameter {key!r} (known: topic)", field=key)
            if topic is not None:
                raise ApiError(400, "query parameter 'topic' given more than once", field="topic")
            topic = validate_name("topic", value)
        if self.clients >= self.max_clients:
            raise ApiError(503, f"too many event streams open (at most {self.max_clients}); retry later")
        # A BackendUnavailable here is answered 503 by the app's exception handlers.
        snapshot = await self.group.list(topic=topic)

        async def produce(out: MemoryObjectSendStream[bytes]) -> None:
            self.clients += 1
            log.info("events_stream_opened", topic=topic, clients=self.clients)
            try:
                await self.pump(out, snapshot, topic=topic)
            finally:
                self.clients -= 1
                log.info("events_stream_closed", topic=topic, clients=self.clients)

        return _EventResponse(produce, heartbeat=self.heartbeat, max_queue=self.max_queue)

    async def pump(
        self, out: MemoryObjectSendStream[bytes], snapshot: list[ServiceStatus], *, topic: str | None = None
    ) -> None:
        """Put the snapshot, then every change, into ``out``.

        State changes come from ``watch()``. It reports nothing else, so every
        ``refresh`` seconds a listing finds services whose other shown fields changed
        (disabled and its reason, forced down, reason, version) and sends them too.

        Returns when ``out`` is full (the client is too slow: it will reconnect) or
        closed. The watch lists again right after the snapshot; a service it reports
        for the first time in the state the snapshot showed is not sent twice.
        """
        sent = {s.service.key: _shown(s) for s in snapshot}
        try:
            out.send_nowait(b"retry: %d\n\n" % RETRY_MS)
            out.send_nowait(sse("snapshot", {"services": [self.row(s) for s in snapshot]}))
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._follow_watch, out, sent, topic)
                tg.start_soon(self._follow_fields, out, sent, topic)
        except* anyio.WouldBlock:
            log.warning("events_client_too_slow", topic=topic, queued=self.max_queue)
        except* (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass

    async def _follow_watch(
        self, out: MemoryObjectSendStream[bytes], sent: dict[ServiceKey, _Shown], topic: str | None
    ) -> None:
        events = self.group.watch(topic=topic)
        try:
            async for event in events:
                key = event.status.service.key
                row = self.row(event.status)
                if event.removed:
                    sent.pop(key, None)
                    out.send_nowait(sse("removed", {"service": row}))
                    continue
                last = sent.get(key)
                state = event.status.verdict.state
                if event.previous is None and last is not None and last[0] == state:
                    continue  # in the snapshot already, in this state
                previous = event.previous if event.previous is not None else (last[0] if last else None)
                sent[key] = _shown(event.status)
                out.send_nowait(sse("change", {"service": row, "previous": previous}))
        finally:
            # watch() is an async generator: close it now, not when it is collected.
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()

    async def _follow_fields(
        self, out: MemoryObjectSendStream[bytes], sent: dict[ServiceKey, _Shown], topic: str | None
    ) -> None:
        while True:
            await anyio.sleep(self.refresh)
            try:
                statuses = await self.group.list(topic=topic)
            except BackendUnavailable:
                continue  # the watch logs it
            for status in statuses:
                key = status.service.key
                last, now = sent.get(key), _shown(status)
                # New services and state changes are the watch's to report, in order: a
                # listing that raced with it must not undo a newer state.
                if last is None or last == now or last[0] != now[0]:
                    continue
                sent[key] = now
                out.send_nowait(sse("change", {"service": self.row(status), "previous": now[0]}))


#: What the page shows of a service, apart from its age: state first.
_Shown = tuple[State, str, bool, str | None, bool, int, str | None, str]


def _shown(status: ServiceStatus) -> _Shown:
    s, v = status.service, status.verdict
    shown = (v.state, v.reason, s.disabled, s.disabled_reason, s.forced_down, s.version, s.check_failure)
    return (*shown, s.topic)
