"""The operators' endpoints of ``sg-api``, in the route table's shape ``(request, ctx)``:
the status page, the event stream, Nova's os-services, the audit trail and pruning.

Each delegates to its own module (:mod:`sg.api.page`, :mod:`sg.api.events`,
:mod:`sg.api.compute`); the token was checked before they run, except on the
os-services routes, which check it themselves to answer in Nova's error shape.
"""

from __future__ import annotations

import uuid as uuidlib

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sg.api import page
from sg.api.errors import ApiError
from sg.api.handlers import Context, Handler, actor_of, service_json
from sg.api.openapi import MAX_REASON_LENGTH
from sg.errors import ConfigError
from sg.timings import parse_duration

__all__ = [
    "events",
    "prunable",
    "prune",
    "service_actions",
    "nova_delete",
    "nova_list",
    "nova_update",
    "nova_version",
    "status_asset",
    "status_page",
]


async def status_page(request: Request, ctx: Context) -> Response:
    """``GET /``: the live status page."""
    return await page.index(request)


async def status_asset(request: Request, ctx: Context) -> Response:
    """``GET /static/{name}``: the page's script and style sheet."""
    return await page.asset(request)


async def events(request: Request, ctx: Context) -> Response:
    """``GET /v1/events``: state changes as Server-Sent Events."""
    return await ctx.events.endpoint(request)


def _nova(name: str, *, write: bool, auth: bool = True) -> Handler:
    async def run(request: Request, ctx: Context) -> Response:
        return await ctx.compute.serve(request, getattr(ctx.compute, name), write=write, auth=auth)

    run.__name__ = f"nova_{name}"
    run.__doc__ = f"os-services: :meth:`sg.api.compute.OsServices.{name}`."
    return run


nova_version = _nova("version", write=False, auth=False)
nova_list = _nova("list_services", write=False)
nova_update = _nova("update_service", write=True)
nova_delete = _nova("delete_service", write=True)


def _params(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key not in allowed:
            raise ApiError(400, f"unknown query parameter {key!r} (known: {', '.join(allowed)})", field=key)
        if key in out:
            raise ApiError(400, f"query parameter {key!r} given more than once", field=key)
        out[key] = value
    return out


async def service_actions(request: Request, ctx: Context) -> Response:
    """``GET /v1/services/{uuid}/actions``: the audit trail of one service, oldest first.
    A deleted service's trail stays readable by its uuid."""
    _params(request, ())
    raw = request.path_params["uuid"]
    try:
        uuid = str(uuidlib.UUID(raw))
    except ValueError:
        raise ApiError(400, "uuid must be a UUID such as 0b5f...-...", field="uuid") from None
    actions = await ctx.group.actions(uuid=uuid)
    if not actions:
        # No trail: a 404 only when there is no such service either.
        await ctx.group.get_by_uuid(uuid)
    return JSONResponse({"actions": [a.as_dict() for a in actions]})


def _down_for(params: dict[str, str]) -> float:
    if "down_for" not in params:
        raise ApiError(400, "down_for is required (for example 7d)", field="down_for")
    try:
        return parse_duration(params["down_for"], "down_for")
    except ConfigError as exc:
        raise ApiError(400, str(exc), field="down_for") from None


async def prunable(request: Request, ctx: Context) -> Response:
    """``GET /v1/services/prune?down_for=7d``: what a prune would delete (nothing changes)."""
    params = _params(request, ("down_for",))
    statuses = await ctx.group.prunable(_down_for(params))
    return JSONResponse({"services": [service_json(s) for s in statuses]})


async def prune(request: Request, ctx: Context) -> Response:
    """``POST /v1/services/prune?down_for=7d[&reason=...]``: delete each service down for
    longer than ``down_for``, through ``leave()`` and the audit trail (action ``prune``)."""
    params = _params(request, ("down_for", "reason"))
    down_for = _down_for(params)
    reason = params.get("reason")
    if reason is not None and not 0 < len(reason) <= MAX_REASON_LENGTH:
        raise ApiError(400, f"reason must be 1 to {MAX_REASON_LENGTH} characters", field="reason")
    results = await ctx.group.prune(down_for, actor=actor_of(request, ctx, why=reason))
    return JSONResponse(
        {
            "pruned": [service_json(s) for s, error in results if error is None],
            "refused": [{"service": service_json(s), "error": error} for s, error in results if error],
        }
    )
