"""The endpoint functions of ``sg-api``: each takes the request and the app's :class:`Context`.

They validate their input, call :class:`~sg.group.ServiceGroup` and raise; the
errors they raise (theirs and the library's) become answers in :mod:`sg.api.errors`.
Authentication runs before them (see :mod:`sg.api.routes`).
"""

from __future__ import annotations

import json
import uuid as uuidlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sg.api.auth import TokenAuth
from sg.api.compute import OsServices
from sg.api.errors import ApiError
from sg.api.events import EventStream
from sg.api.listing import SingleFlight, listing_response
from sg.api.metrics import ApiMetrics
from sg.api.openapi import API_FIELDS, MAX_REASON_LENGTH
from sg.errors import BackendUnavailable
from sg.group import ServiceGroup
from sg.lazylog import get_logger
from sg.model import Actor, ServiceStatus, validate_name, validate_text

__all__ = [
    "Context",
    "Handler",
    "actor_of",
    "delete_service",
    "get_service",
    "healthz",
    "list_services",
    "min_version",
    "openapi",
    "prometheus",
    "service_json",
    "update_service",
]

log = get_logger("sg.api")

#: Largest request body read, in bytes: a PUT body is a few dozen.
MAX_BODY = 64 * 1024
STATES = ("up", "down", "unknown")
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


@dataclass(frozen=True, slots=True)
class Context:
    """What the handlers of one app share: the open group, the token check, the
    request metrics, the OpenAPI document, the event stream, the os-services
    interface (:mod:`sg.api.operators`) and the listings being read (shared by the
    requests that want the same one at the same time)."""

    group: ServiceGroup
    auth: TokenAuth
    metrics: ApiMetrics
    openapi: dict[str, Any]
    events: EventStream
    compute: OsServices
    listings: SingleFlight = field(default_factory=SingleFlight)


Handler = Callable[[Request, Context], Awaitable[Response]]


def service_json(status: ServiceStatus) -> dict[str, Any]:
    """A service as the API shows it."""
    row = status.as_dict()
    return {field: row[field] for field in API_FIELDS}


def actor_of(request: Request, ctx: Context, via: str = "api", why: str | None = None) -> Actor:
    """Who makes a change, for the audit trail: the name of the token presented."""
    return Actor(ctx.auth.identify(request) or "anonymous", via, why)


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


async def list_services(request: Request, ctx: Context) -> Response:
    """``GET /v1/services``: one ``ServiceGroup.list()`` call (shared with concurrent
    requests for the same listing), filtered by state here; ``304`` when
    ``If-None-Match`` names the listing's ETag."""
    params = _query(request, ("host", "binary", "topic", "state"))
    filters = {
        name: validate_name(name, params[name]) for name in ("host", "binary", "topic") if name in params
    }
    state = params.get("state")
    if state is not None and state not in STATES:
        raise ApiError(400, f"state must be one of {', '.join(STATES)}", field="state")

    async def read() -> list[ServiceStatus]:
        statuses = await ctx.group.list(**filters)
        if state is None:
            return statuses
        return [s for s in statuses if s.verdict.state == state]

    # Requests for the same listing at the same time share one read, its weak ETag
    # and its orjson body (see sg/api/listing.py).
    key = (filters.get("host"), filters.get("binary"), filters.get("topic"), state)
    return listing_response(request, await ctx.listings.get(key, read))


async def get_service(request: Request, ctx: Context) -> Response:
    """``GET /v1/services/{uuid}``."""
    _query(request, ())
    return JSONResponse({"service": service_json(await ctx.group.get_by_uuid(_uuid(request)))})


async def update_service(request: Request, ctx: Context) -> Response:
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
        if reason is not None:
            # The model's one free-text rule (length, control characters, surrogates):
            # InvalidName is a 400 naming the field.
            validate_text("disabled_reason", reason, MAX_REASON_LENGTH)
    forced_down = body.get("forced_down")
    if "forced_down" in body and not isinstance(forced_down, bool):
        raise ApiError(400, "forced_down must be true or false", field="forced_down")
    key = (await ctx.group.get_by_uuid(uuid)).service.key
    await ctx.group.update_admin(
        key,
        disabled=None if status is None else status == "disabled",
        reason=reason,
        forced_down=forced_down if isinstance(forced_down, bool) else None,
        actor=actor_of(request, ctx),
    )
    log.info("service_updated", host=key.host, binary=key.binary, status=status, forced_down=forced_down)
    return JSONResponse({"service": service_json(await ctx.group.get_by_uuid(uuid))})


async def delete_service(request: Request, ctx: Context) -> Response:
    """``DELETE /v1/services/{uuid}[?force=true]``: remove the record and the driver member."""
    params = _query(request, ("force",))
    force = _flag(params["force"], "force") if "force" in params else False
    current = await ctx.group.get_by_uuid(_uuid(request))
    await ctx.group.delete(current.service, force=force, actor=actor_of(request, ctx))
    return Response(status_code=204)


async def min_version(request: Request, ctx: Context) -> Response:
    """``GET /v1/services/min-version?binary=NAME[&only_up=true]``."""
    params = _query(request, ("binary", "only_up"))
    if "binary" not in params:
        raise ApiError(400, "binary is required", field="binary")
    binary = validate_name("binary", params["binary"])
    only_up = _flag(params["only_up"], "only_up") if "only_up" in params else False
    found = await ctx.group.min_version(binary, only_up=only_up)
    return JSONResponse({"binary": binary, "only_up": only_up, "min_version": found})


async def healthz(request: Request, ctx: Context) -> Response:
    """``GET /healthz``: 200 when both backends answer, else 503 naming the one that did not.

    Open to all; the backends' error messages (host names, ports) are shown only to
    requests that may read.
    """
    errors = await ctx.group.ping()
    detailed = ctx.auth.may_read(request)
    names = {"store": ctx.group.store.name, "driver": ctx.group.driver.name}
    body: dict[str, Any] = {}
    for role in ("store", "driver"):
        error = errors[role]
        shown = error if error is None or detailed else "unreachable (send a token for details)"
        body[role] = {"backend": names[role], "ok": error is None, "error": shown}
    healthy = all(error is None for error in errors.values())
    body["status"] = "ok" if healthy else "unavailable"
    return JSONResponse(body, status_code=200 if healthy else 503)


async def prometheus(request: Request, ctx: Context) -> Response:
    """``GET /metrics``: request metrics plus ``sg_service_up`` from one listing."""
    statuses: list[ServiceStatus] | None
    try:
        statuses = await ctx.group.list()
    except BackendUnavailable as exc:
        log.warning("metrics_listing_failed", error=str(exc))
        statuses = None
    return Response(ctx.metrics.render(statuses), media_type="text/plain; version=0.0.4; charset=utf-8")


async def openapi(request: Request, ctx: Context) -> Response:
    """``GET /openapi.json``."""
    return JSONResponse(ctx.openapi)
