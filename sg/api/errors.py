"""Error answers: :class:`ApiError`, and one Starlette exception handler per error type.

A handler answers by the exception's type alone (Starlette picks the most specific
one along the MRO), so no handler looks at an exception's cause:

================================  ======
``ApiError``                      its own status
``InvalidName``, ``ConfigError``  400
``NotFound``                      404
``Refused``                       409
``BackendUnavailable``            503 (before ``Refused`` for ``LeaveRefused``)
router ``HTTPException``          its status (404 unknown path, 405 wrong method)
anything else                     500, logged, without the traceback
================================  ======
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sg.errors import BackendUnavailable, ConfigError, InvalidName, NotFound, Refused
from sg.lazylog import get_logger

__all__ = ["EXCEPTION_HANDLERS", "ROUTE_KEY", "ApiError", "InternalErrors"]

log = get_logger("sg.api")

#: Scope key under which the endpoint records its route template (for logs and metrics).
ROUTE_KEY = "sg.route"

ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


class ApiError(Exception):
    """An error answer: status, message and (for 400) the offending field."""

    def __init__(
        self, status: int, message: str, field: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        """The JSON answer."""
        body: dict[str, Any] = {"code": self.status, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return JSONResponse({"error": body}, status_code=self.status, headers=self.headers)


def _route(request: Request) -> str:
    return str(request.scope.get(ROUTE_KEY, "other"))


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if exc.status == 401:
        # Who was refused, never what they presented.
        client = request.client.host if request.client else None
        log.info("unauthorized", route=_route(request), method=request.method, client=client, why=exc.message)
    return exc.response()


async def _invalid_name(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidName)
    return ApiError(400, str(exc), field=exc.field).response()


async def _bad_value(request: Request, exc: Exception) -> Response:
    return ApiError(400, str(exc)).response()


async def _not_found(request: Request, exc: Exception) -> Response:
    return ApiError(404, str(exc)).response()


async def _refused(request: Request, exc: Exception) -> Response:
    return ApiError(409, str(exc)).response()


async def _unavailable(request: Request, exc: Exception) -> Response:
    log.warning("backend_unavailable", route=_route(request), error=str(exc))
    return ApiError(503, str(exc)).response()


async def _http_error(request: Request, exc: Exception) -> Response:
    """Router errors (404 unknown path, 405 wrong method) as JSON."""
    assert isinstance(exc, HTTPException)
    message = {404: "no such resource", 405: f"method {request.method} not allowed"}.get(
        exc.status_code, str(exc.detail)
    )
    return ApiError(exc.status_code, message, headers=exc.headers).response()


#: Starlette ``exception_handlers``, keyed by type.
EXCEPTION_HANDLERS: dict[Any, ExceptionHandler] = {
    ApiError: _api_error,
    InvalidName: _invalid_name,
    ConfigError: _bad_value,
    NotFound: _not_found,
    Refused: _refused,
    BackendUnavailable: _unavailable,
    HTTPException: _http_error,
}

_INTERNAL = ApiError(500, "internal error; the sg-api log has the details")


class InternalErrors:
    """Pure ASGI middleware: any exception no handler took (a bug, not a client or
    backend fault) is logged and answered as a JSON 500 without the traceback.

    Starlette's own last-resort handler re-raises after answering, which would
    hand the exception to the server (and to an in-process test client).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def note_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, note_start)
        except Exception:
            log.exception("request_failed", route=scope.get(ROUTE_KEY, "other"), method=scope["method"])
            if started:
                raise  # too late for an answer of our own; the server closes the connection
            await _INTERNAL.response()(scope, receive, send)
