"""``sg-api``: the os-services REST interface, over :class:`~sg.group.ServiceGroup` alone.

Shapes follow Nova's os-services so operators recognise them. Every answer is
JSON; errors are ``{"error": {"code", "message", "field"?}}`` and never a
traceback. Changes need a bearer token, reads too unless ``[api] open_reads``.

Run it with ``sg-api [--config FILE] [--listen HOST:PORT]`` or serve
:func:`create_app` with any ASGI server.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import signal
import sys
import time
import uuid as uuidlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from types import FrameType
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sg.api_metrics import ApiMetrics
from sg.config import Settings, add_config_argument, load_settings, parse_listen, redact_url
from sg.errors import BackendUnavailable, ConfigError, InvalidName, NotFound, Refused
from sg.group import ServiceGroup
from sg.logsetup import add_logging_arguments, configure_logging
from sg.model import ServiceStatus, validate_name
from sg.openapi import API_FIELDS, MAX_REASON_LENGTH, OPENAPI

__all__ = ["ApiError", "create_app", "main", "service_json"]

log = structlog.get_logger("sg.rest")

#: sysexits.h EX_CONFIG, as sg-agent and sgctl.
EXIT_CONFIG = 78
#: Largest request body read, in bytes: a PUT body is a few dozen.
MAX_BODY = 64 * 1024
STATES = ("up", "down", "unknown")
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")

Handler = Callable[[Request], Awaitable[Response]]


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


def service_json(status: ServiceStatus) -> dict[str, Any]:
    """A service as the API shows it."""
    row = status.as_dict()
    return {field: row[field] for field in API_FIELDS}


class TokenAuth:
    """Bearer tokens, compared in constant time; tokens are never logged or echoed."""

    def __init__(self, tokens: tuple[str, ...], open_reads: bool) -> None:
        # Digests make every comparison the same length, so timing leaks nothing.
        self._digests = [hashlib.sha256(t.encode()).digest() for t in tokens]
        self.open_reads = open_reads

    def check(self, request: Request, *, write: bool) -> None:
        """Raise a 401 :class:`ApiError` unless the request may go on."""
        if not write and self.open_reads:
            return
        header = request.headers.get("authorization")
        if header is None:
            raise ApiError(
                401,
                "a bearer token is required (Authorization: Bearer TOKEN)",
                headers={"WWW-Authenticate": 'Bearer realm="sg-api"'},
            )
        scheme, _, presented = header.partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            raise ApiError(
                401,
                "the Authorization header must be 'Bearer TOKEN'",
                headers={"WWW-Authenticate": 'Bearer realm="sg-api", error="invalid_request"'},
            )
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        matched = False
        for known in self._digests:
            matched |= hmac.compare_digest(known, digest)
        if not matched:
            raise ApiError(
                401,
                "invalid token",
                headers={"WWW-Authenticate": 'Bearer realm="sg-api", error="invalid_token"'},
            )


class _RequestMetrics:
    """Pure ASGI middleware: counts and times every request by route template."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            elapsed = time.perf_counter() - started
            # Route templates, not raw paths, keep the label set bounded.
            route = scope.get("sg.route", "other")
            self.metrics.observe(route, scope["method"], status[0], elapsed)
            log.debug(
                "request",
                method=scope["method"],
                route=route,
                status=status[0],
                duration_ms=round(elapsed * 1000, 2),
            )


def _flag(value: str, field: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ApiError(400, f"{field} must be true or false", field=field)


def _query(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query parameters, each at most once; unknown ones are errors naming them."""
    out: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key not in allowed:
            known = ", ".join(allowed) or "none"
            raise ApiError(400, f"unknown query parameter {key!r} (known: {known})", field=key)
        if key in out:
            raise ApiError(400, f"query parameter {key!r} given more than once", field=key)
        out[key] = value
    return out


def _uuid(request: Request) -> str:
    raw = request.path_params["uuid"]
    try:
        return str(uuidlib.UUID(raw))
    except ValueError:
        raise ApiError(400, "uuid must be a UUID such as 0b5f...-...", field="uuid") from None


async def _json_object(request: Request) -> dict[str, Any]:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise ApiError(413, f"request body larger than {MAX_BODY} bytes", field="body")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise ApiError(400, "the request body must be a JSON object", field="body") from None
    if not isinstance(document, dict):
        raise ApiError(400, "the request body must be a JSON object", field="body")
    return document


class Api:
    """The handlers, bound to one open :class:`ServiceGroup`."""

    def __init__(self, group: ServiceGroup, auth: TokenAuth, metrics: ApiMetrics) -> None:
        self.group = group
        self.auth = auth
        self.metrics = metrics

    def endpoint(self, route: str, handler: Handler, *, write: bool = False, auth: bool = True) -> Handler:
        """Wrap ``handler``: label its route, check the token, map errors to JSON answers."""

        async def run(request: Request) -> Response:
            request.scope["sg.route"] = route
            try:
                if auth:
                    self.auth.check(request, write=write)
                return await handler(request)
            except ApiError as exc:
                if exc.status == 401:
                    # Who was refused, never what they presented.
                    client = request.client.host if request.client else None
                    log.info(
                        "unauthorized", route=route, method=request.method, client=client, why=exc.message
                    )
                return exc.response()
            except InvalidName as exc:
                return ApiError(400, str(exc), field=exc.field).response()
            except NotFound as exc:
                return ApiError(404, str(exc)).response()
            except Refused as exc:
                if isinstance(exc.__cause__, BackendUnavailable | TimeoutError):
                    return ApiError(503, str(exc)).response()
                return ApiError(409, str(exc)).response()
            except BackendUnavailable as exc:
                log.warning("backend_unavailable", route=route, error=str(exc))
                return ApiError(503, str(exc)).response()
            except Exception:
                # A bug, not a client or backend fault: log it, answer JSON without the trace.
                log.exception("request_failed", route=route, method=request.method)
                return ApiError(500, "internal error; the sg-api log has the details").response()

        return run

    async def list_services(self, request: Request) -> Response:
        """``GET /v1/services``: one ``ServiceGroup.list()`` call, filtered by state here."""
        params = _query(request, ("host", "binary", "topic", "state"))
        filters = {
            name: validate_name(name, params[name]) for name in ("host", "binary", "topic") if name in params
        }
        state = params.get("state")
        if state is not None and state not in STATES:
            raise ApiError(400, f"state must be one of {', '.join(STATES)}", field="state")
        statuses = await self.group.list(**filters)
        services = [service_json(s) for s in statuses if state is None or s.verdict.state == state]
        return JSONResponse({"services": services})

    async def get_service(self, request: Request) -> Response:
        """``GET /v1/services/{uuid}``."""
        _query(request, ())
        return JSONResponse({"service": service_json(await self.group.get_by_uuid(_uuid(request)))})

    async def update_service(self, request: Request) -> Response:
        """``PUT /v1/services/{uuid}``: status, disabled_reason, forced_down; never updated_at."""
        _query(request, ())
        uuid = _uuid(request)
        body = await _json_object(request)
        for name in body:
            if name not in ("status", "disabled_reason", "forced_down"):
                raise ApiError(
                    400, f"unknown field {name!r} (known: status, disabled_reason, forced_down)", field=name
                )
        if not body:
            raise ApiError(
                400,
                "the request body must give at least one of status, disabled_reason, forced_down",
                field="body",
            )
        status = body.get("status")
        if "status" in body and status not in ("enabled", "disabled"):
            raise ApiError(400, "status must be 'enabled' or 'disabled'", field="status")
        reason = body.get("disabled_reason")
        if "disabled_reason" in body:
            if status != "disabled":
                raise ApiError(
                    400, "disabled_reason may only be given with status 'disabled'", field="disabled_reason"
                )
            if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON_LENGTH):
                raise ApiError(
                    400,
                    f"disabled_reason must be a string of at most {MAX_REASON_LENGTH} characters",
                    field="disabled_reason",
                )
        forced_down = body.get("forced_down")
        if "forced_down" in body and not isinstance(forced_down, bool):
            raise ApiError(400, "forced_down must be true or false", field="forced_down")
        key = (await self.group.get_by_uuid(uuid)).service.key
        if status is not None:
            await self.group.set_disabled(key, status == "disabled", reason)
        if isinstance(forced_down, bool):
            await self.group.set_forced_down(key, forced_down)
        log.info(
            "service_updated",
            host=key.host,
            binary=key.binary,
            status=status,
            forced_down=forced_down,
        )
        return JSONResponse({"service": service_json(await self.group.get_by_uuid(uuid))})

    async def delete_service(self, request: Request) -> Response:
        """``DELETE /v1/services/{uuid}[?force=true]``: remove the record and the driver member."""
        params = _query(request, ("force",))
        force = _flag(params["force"], "force") if "force" in params else False
        current = await self.group.get_by_uuid(_uuid(request))
        await self.group.delete(current.service, force=force)
        return Response(status_code=204)

    async def min_version(self, request: Request) -> Response:
        """``GET /v1/services/min-version?binary=NAME[&only_up=true]``."""
        params = _query(request, ("binary", "only_up"))
        if "binary" not in params:
            raise ApiError(400, "binary is required", field="binary")
        binary = validate_name("binary", params["binary"])
        only_up = _flag(params["only_up"], "only_up") if "only_up" in params else False
        found = await self.group.min_version(binary, only_up=only_up)
        return JSONResponse({"binary": binary, "only_up": only_up, "min_version": found})

    async def healthz(self, request: Request) -> Response:
        """``GET /healthz``: 200 when both backends answer, else 503 naming the one that did not.

        Open to all; the backends' error messages are shown only to requests that may read.
        """
        errors = await self.group.ping()
        try:
            self.auth.check(request, write=False)
            detailed = True
        except ApiError:
            # No token needed, but backend errors (host names, ports) only for readers.
            detailed = False
        names = {"store": self.group.store.name, "driver": self.group.driver.name}
        body: dict[str, Any] = {}
        for role in ("store", "driver"):
            error = errors[role]
            shown = error if error is None or detailed else "unreachable (send a token for details)"
            body[role] = {"backend": names[role], "ok": error is None, "error": shown}
        healthy = all(error is None for error in errors.values())
        body["status"] = "ok" if healthy else "unavailable"
        return JSONResponse(body, status_code=200 if healthy else 503)

    async def prometheus(self, request: Request) -> Response:
        """``GET /metrics``: request metrics plus ``sg_service_up`` from one listing."""
        statuses: list[ServiceStatus] | None
        try:
            statuses = await self.group.list()
        except BackendUnavailable as exc:
            log.warning("metrics_listing_failed", error=str(exc))
            statuses = None
        return Response(self.metrics.render(statuses), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi(self, request: Request) -> Response:
        """``GET /openapi.json``."""
        return JSONResponse(OPENAPI)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Router errors (404 unknown path, 405 wrong method) as JSON."""
    if isinstance(exc, HTTPException):
        headers = dict(exc.headers or {})
        message = {404: "no such resource", 405: f"method {request.method} not allowed"}.get(
            exc.status_code, str(exc.detail)
        )
        return ApiError(exc.status_code, message, headers=headers).response()
    log.error("request_failed", path=request.url.path, error=type(exc).__name__)
    return ApiError(500, "internal error; the sg-api log has the details").response()


def create_app(settings: Settings, *, group: ServiceGroup | None = None) -> Starlette:
    """The ASGI app. Without ``group`` it opens one from ``settings`` at start-up (the
    ASGI lifespan) and closes it at shutdown; a given ``group`` is the caller's to close."""
    owned = group is None
    the_group = ServiceGroup.from_settings(settings) if group is None else group
    metrics = ApiMetrics()
    api = Api(the_group, TokenAuth(settings.api.tokens, settings.api.open_reads), metrics)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not owned:
            yield
            return
        try:
            await the_group.__aenter__()
        except ConfigError as exc:
            # For example a database whose schema is newer than this release: main()
            # exits 78 on it, as sg-agent and sgctl do.
            app.state.config_error = exc
            log.error("configuration_error", error=str(exc))
            raise
        try:
            log.info("api_started", store=the_group.store.name, driver=the_group.driver.name)
            yield
        finally:
            await the_group.aclose()
        log.info("api_stopped")

    routes = [
        Route("/v1/services", api.endpoint("/v1/services", api.list_services), methods=["GET"]),
        Route(
            "/v1/services/min-version",
            api.endpoint("/v1/services/min-version", api.min_version),
            methods=["GET"],
        ),
        Route("/v1/services/{uuid}", api.endpoint("/v1/services/{uuid}", api.get_service), methods=["GET"]),
        Route(
            "/v1/services/{uuid}",
            api.endpoint("/v1/services/{uuid}", api.update_service, write=True),
            methods=["PUT"],
        ),
        Route(
            "/v1/services/{uuid}",
            api.endpoint("/v1/services/{uuid}", api.delete_service, write=True),
            methods=["DELETE"],
        ),
        Route("/healthz", api.endpoint("/healthz", api.healthz, auth=False), methods=["GET"]),
        Route("/metrics", api.endpoint("/metrics", api.prometheus), methods=["GET"]),
        Route("/openapi.json", api.endpoint("/openapi.json", api.openapi, auth=False), methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_RequestMetrics, metrics=metrics)],
        exception_handlers={HTTPException: _http_error, Exception: _http_error},
        lifespan=lifespan,
    )
    app.state.group = the_group
    return app


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line flags."""
    parser = argparse.ArgumentParser(prog="sg-api", description="Serve the servicegroup REST API.")
    add_config_argument(parser)
    parser.add_argument("--listen", help="HOST:PORT to listen on (default: [api] listen, 127.0.0.1:8775)")
    add_logging_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``sg-api``; returns the exit status (78 on a configuration error)."""
    import uvicorn

    args = parse_args(argv)
    configure_logging(args.log_level, json=args.log_json)
    try:
        settings = load_settings(args.config)
        if args.listen:
            settings = replace(settings, api=replace(settings.api, listen=args.listen))
        host, port = parse_listen(settings.api.listen, "listen")
        app = create_app(settings)
    except ConfigError as exc:
        log.error("configuration_error", error=str(exc))
        return EXIT_CONFIG
    if not settings.api.tokens:
        log.warning("api_no_tokens", detail="no [api] tokens and no SG_API_TOKEN: every change is refused")
    if host not in ("127.0.0.1", "::1", "localhost"):
        log.warning("api_not_on_loopback", host=host, detail="put TLS in front of it")
    log.info(
        "api_starting",
        listen=f"{host}:{port}",
        store=redact_url(settings.store),
        driver=redact_url(settings.driver),
        tokens=len(settings.api.tokens),
        open_reads=settings.api.open_reads,
    )
    # uvicorn's own access log is off: the middleware logs each request with its
    # route template, never its headers (which carry the token).
    config = uvicorn.Config(app, host=host, port=port, access_log=False, log_config=None, server_header=False)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            log.info("api_stopping", signal=signal.Signals(sig).name)
            super().handle_exit(sig, frame)
            # uvicorn re-raises the signal after its graceful shutdown, so the exit
            # status would be -15; a clean stop exits 0, as sg-agent does.
            self._captured_signals.clear()

    server = Server(config)
    try:
        server.run()
    except SystemExit:
        # uvicorn exits on a failed start-up; a refused configuration is ours to report.
        if getattr(app.state, "config_error", None) is None:
            raise
    if getattr(app.state, "config_error", None) is not None:
        return EXIT_CONFIG
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
