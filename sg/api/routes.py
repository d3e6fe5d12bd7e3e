"""The route table of ``sg-api``: every route once, with its handler and its description.

Both the Starlette routes (:mod:`sg.api.app`) and the OpenAPI ``paths``
(:data:`OPENAPI`) are built from :data:`ROUTES`, so a route template is written
once. Order matters to the router: ``/v1/services/min-version`` comes before
``/v1/services/{uuid}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sg.api import handlers
from sg.api.handlers import Handler
from sg.api.openapi import ERRORS, MAX_REASON_LENGTH, NAME, SERVICE_BODY, document, error, query

__all__ = ["OPENAPI", "ROUTES", "ApiRoute"]


@dataclass(frozen=True, slots=True)
class ApiRoute:
    """One route: where, which methods, which handler, who may call it, and how the
    OpenAPI document describes it.

    ``auth`` runs the token check before the handler (for a read unless
    ``open_reads``; for a ``write`` always). A route without it is open to all.
    ``documented`` is false only for the document itself.
    """

    path: str
    methods: tuple[str, ...]
    handler: Handler
    summary: str
    responses: Mapping[str, Any]
    write: bool = False
    auth: bool = True
    params: tuple[Mapping[str, Any], ...] = ()
    body: Mapping[str, Any] | None = None
    documented: bool = True


_NOT_FOUND = error("No such service.")

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
