"""The ``sg-api`` ASGI app: routes from the table, the group's lifespan, the middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sg.api.auth import TokenAuth
from sg.api.compute import OsServices
from sg.api.errors import EXCEPTION_HANDLERS, ROUTE_KEY, InternalErrors
from sg.api.events import EventStream
from sg.api.handlers import Context, service_json
from sg.api.metrics import ApiMetrics, RequestMetrics
from sg.api.routes import OPENAPI, ROUTES, ApiRoute
from sg.api.settings import ApiSettings
from sg.config import Settings
from sg.errors import ConfigError
from sg.group import ServiceGroup
from sg.lazylog import get_logger

__all__ = ["create_app"]

log = get_logger("sg.api")


def _endpoint(route: ApiRoute, ctx: Context) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint of ``route``: label its template, check the token, run the
    handler. What it raises is answered by the exception handlers of :mod:`sg.api.errors`."""

    async def run(request: Request) -> Response:
        request.scope[ROUTE_KEY] = route.path
        if route.auth:
            ctx.auth.check(request, write=route.write)
        return await route.handler(request, ctx)

    return run


def create_app(
    settings: Settings,
    api: ApiSettings,
    *,
    group: ServiceGroup | None = None,
    event_options: Mapping[str, Any] | None = None,
) -> Starlette:
    """The ASGI app, with ``api`` for tokens and ``settings`` for the backends.

    Without ``group`` it opens one from ``settings`` at start-up (the ASGI lifespan)
    and closes it at shutdown; a given ``group`` is the caller's to close.
    ``event_options`` are keyword arguments of :class:`~sg.api.events.EventStream`
    (``heartbeat``, ``refresh``, ``max_queue``, ``max_clients``).
    """
    owned = group is None
    the_group = ServiceGroup.from_settings(settings) if group is None else group
    metrics = ApiMetrics(
        (route.path for route in ROUTES), untimed=(route.path for route in ROUTES if not route.timed)
    )
    auth = TokenAuth(api.named_tokens, api.open_reads)
    events = EventStream(the_group, row=service_json, **(event_options or {}))
    compute = OsServices(the_group, auth, zone_of=lambda service: service.zone, who=auth.identify)
    ctx = Context(the_group, auth, metrics, OPENAPI, events, compute)

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

    app = Starlette(
        routes=[Route(r.path, _endpoint(r, ctx), methods=list(r.methods)) for r in ROUTES],
        # Outermost first: the metrics see the 500 that InternalErrors answers.
        middleware=[Middleware(RequestMetrics, metrics=metrics), Middleware(InternalErrors)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.group = the_group
    app.state.events = events
    app.state.context = ctx
    return app
