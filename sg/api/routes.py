"""The route table of ``sg-api``: every route once, with its handler and its description.

Both the Starlette routes (:mod:`sg.api.app`) and the OpenAPI ``paths``
(:data:`OPENAPI`) are built from :data:`ROUTES`, so a route template is written
once. Order matters to the router: ``/v1/services/min-version`` comes before
``/v1/services/{uuid}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sg.api import handlers, operators
from sg.api.handlers import Handler
from sg.api.openapi import ERRORS, MAX_REASON_LENGTH, NAME, SERVICE_BODY, document, error, query

__all__ = ["OPENAPI", "ROUTES", "ApiRoute"]


@dataclass(frozen=True, slots=True)
class ApiRoute:
    """One route: where, which methods, which handler, who may call it, and how the
    OpenAPI document describes it.

    ``auth`` runs the token check before the handler (for a read unless
    ``open_reads``; for a ``write`` always). A route without it is open to all.
    ``documented`` is false for the document itself and for Nova's os-services
    (their schema is Nova's, not this document's). ``timed`` is false for a stream,
    whose length is the client's: it is counted but kept out of the latency histogram.
    """

    path: str
    methods: tuple[str, ...]
    handler: Handler
    summary: str
    responses: Mapping[str, Any] = field(default_factory=dict)
    write: bool = False
    auth: bool = True
    params: tuple[Mapping[str, Any], ...] = ()
    body: Mapping[str, Any] | None = None
    documented: bool = True
    timed: bool = True


def _text(media_type: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


_NOT_FOUND = error("No such service.")
_DOWN_FOR = query(
    "down_for",
    {"type": "string", "pattern": r"^\d+(\.\d+)?[smhdw]?$"},
    "Down for longer than this (7d).",
    required=True,
)
_SERVICES = {
    "description": "The services",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "services": {"type": "array", "items": {"$ref": "#/components/schemas/Service"}}
                },
                "required": ["services"],
            }
        }
    },
}

ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute(
        "/v1/services",
        ("GET",),
        handlers.list_services,
        summary="List services with their liveness (one library call).",
        params=(
            query("host", NAME, "Only this host."),
            query("binary", NAME, "Only this binary."),
            query("topic", NAME, "Only this topic."),
            query("state", {"type": "string", "enum": ["up", "down", "unknown"]}, "Only this state."),
        ),
        responses={
            "200": {
                "description": "The services",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "services": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Service"},
                                }
                            },
                            "required": ["services"],
                        }
                    }
                },
            },
            # A poller's If-None-Match still names the listing's weak ETag (sg/api/listing.py).
            "304": {"description": "Not modified: nothing but age and updated_at moved"},
            **ERRORS,
        },
    ),
    ApiRoute(
        "/v1/services/min-version",
        ("GET",),
        handlers.min_version,
        summary="The lowest version of a binary, over live services with only_up.",
        params=(
            query("binary", NAME, "The binary.", required=True),
            query("only_up", {"type": "boolean"}, "Count only services that are up."),
        ),
        responses={
            "200": {
                "description": "The minimum version, null when there are no services",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "binary": {"type": "string"},
                                "only_up": {"type": "boolean"},
                                "min_version": {"type": "integer", "nullable": True},
                            },
                            "required": ["binary", "only_up", "min_version"],
                        }
                    }
                },
            },
            **ERRORS,
        },
    ),
    ApiRoute(
        "/v1/services/prune",
        ("GET",),
        operators.prunable,
        summary="Services down (not unknown) for longer than down_for: what a prune would delete.",
        params=(_DOWN_FOR,),
        responses={"200": _SERVICES, **ERRORS},
    ),
    ApiRoute(
        "/v1/services/prune",
        ("POST",),
        operators.prune,
        write=True,
        summary="Delete services down for longer than down_for (leave() and the audit trail).",
        params=(_DOWN_FOR, query("reason", {"type": "string", "maxLength": MAX_REASON_LENGTH}, "Why.")),
        responses={
            "200": {
                "description": "What was deleted, and what was refused (it came back, say)",
                "content": {
                    "application/json": {"schema": {"type": "object", "required": ["pruned", "refused"]}}
                },
            },
            **ERRORS,
        },
    ),
    ApiRoute(
        "/v1/services/{uuid}/actions",
        ("GET",),
        operators.service_actions,
        summary="The audit trail of a service: who changed what, when (store clock), why.",
        responses={
            "200": {
                "description": "The admin changes, oldest first",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "actions": {"type": "array", "items": {"$ref": "#/components/schemas/Action"}}
                            },
                            "required": ["actions"],
                        }
                    }
                },
            },
            "404": _NOT_FOUND,
            **ERRORS,
        },
    ),
    ApiRoute(
        "/v1/services/{uuid}",
        ("GET",),
        handlers.get_service,
        summary="One service with its liveness.",
        responses={"200": SERVICE_BODY, "404": _NOT_FOUND, **ERRORS},
    ),
    ApiRoute(
        "/v1/services/{uuid}",
        ("PUT",),
        handlers.update_service,
        write=True,
        summary="Enable, disable or force down a service; updated_at never changes.",
        body={
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "status": {"type": "string", "enum": ["enabled", "disabled"]},
                            "disabled_reason": {
                                "type": "string",
                                "nullable": True,
                                "maxLength": MAX_REASON_LENGTH,
                            },
                            "forced_down": {"type": "boolean"},
                        },
                        "additionalProperties": False,
                        "minProperties": 1,
                    }
                }
            },
        },
        responses={"200": SERVICE_BODY, "404": _NOT_FOUND, **ERRORS},
    ),
    ApiRoute(
        "/v1/services/{uuid}",
        ("DELETE",),
        handlers.delete_service,
        write=True,
        summary="Delete the record and remove the driver member (leave).",
        params=(query("force", {"type": "boolean"}, "Delete even if the service is up or unknown."),),
        responses={
            "204": {"description": "Deleted"},
            "404": _NOT_FOUND,
            "409": error("The service is up (or unknown) and force was not given."),
            **ERRORS,
        },
    ),
    ApiRoute(
        "/healthz",
        ("GET",),
        handlers.healthz,
        # Open to all: the handler shows backend details only to requests that may read.
        auth=False,
        summary="Whether this process and both backends answer (no token needed).",
        responses={
            "200": {"description": "Both backends answered"},
            "503": {"description": "A backend is unreachable"},
        },
    ),
    ApiRoute(
        "/metrics",
        ("GET",),
        handlers.prometheus,
        summary="Prometheus metrics (request counts and latency, sg_service_up).",
        responses={"200": {"description": "Prometheus text format"}, "401": ERRORS["401"]},
    ),
    ApiRoute(
        "/v1/events",
        ("GET",),
        operators.events,
        timed=False,
        summary="State changes as Server-Sent Events: a snapshot, then change and removed events.",
        params=(query("topic", NAME, "Only this topic."),),
        responses={"200": _text("text/event-stream", "The event stream (never ends by itself)"), **ERRORS},
    ),
    ApiRoute(
        "/",
        ("GET",),
        operators.status_page,
        # Open to all: the page holds no data until /v1/events, which checks the token.
        auth=False,
        summary="The live status page (no build step, nothing fetched from elsewhere).",
        responses={"200": _text("text/html", "The page")},
    ),
    ApiRoute(
        "/static/{name}",
        ("GET",),
        operators.status_asset,
        auth=False,
        summary="The status page's script and style sheet.",
        responses={"200": _text("text/plain", "app.js or style.css"), "404": error("No such asset.")},
    ),
    # Nova's os-services (sg.api.compute), for the openstack CLI: undocumented here, as
    # their schema is Nova's. The handler checks the token itself (reads for GET,
    # changes for PUT and DELETE) so that a refusal is a Nova error document.
    ApiRoute("/v2.1", ("GET",), operators.nova_version, auth=False, documented=False, summary="Version."),
    ApiRoute("/v2.1/", ("GET",), operators.nova_version, auth=False, documented=False, summary="Version."),
    ApiRoute(
        "/v2.1/os-services",
        ("GET",),
        operators.nova_list,
        auth=False,
        documented=False,
        summary="os-services list (token checked by the handler).",
    ),
    ApiRoute(
        "/v2.1/os-services/{service_id}",
        ("PUT",),
        operators.nova_update,
        write=True,
        auth=False,
        documented=False,
        summary="os-services update (token checked by the handler).",
    ),
    ApiRoute(
        "/v2.1/os-services/{service_id}",
        ("DELETE",),
        operators.nova_delete,
        write=True,
        auth=False,
        documented=False,
        summary="os-services delete (token checked by the handler).",
    ),
    ApiRoute(
        "/openapi.json",
        ("GET",),
        handlers.openapi,
        auth=False,
        documented=False,
        summary="This document.",
        responses={"200": {"description": "The OpenAPI document"}},
    ),
)

#: The OpenAPI document served at ``/openapi.json``.
OPENAPI = document(ROUTES)
