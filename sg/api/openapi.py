"""The OpenAPI 3.0 document ``sg-api`` serves at ``/openapi.json``: its schemas and parts.

Its ``paths`` are built from the route table (:data:`sg.api.routes.ROUTES`), which
holds each route's summary, parameters and answers next to its handler, so a route
and its description cannot drift apart. schemathesis generates requests from the
document in the tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from sg.model import MAX_NAME_LENGTH, MAX_TEXT_LENGTH


class DocumentedRoute(Protocol):
    """What the document reads of a route (:class:`sg.api.routes.ApiRoute` is one; the
    route table imports this module, so this one names only the shape)."""

    @property
    def path(self) -> str: ...
    @property
    def methods(self) -> tuple[str, ...]: ...
    @property
    def summary(self) -> str: ...
    @property
    def responses(self) -> Mapping[str, Any]: ...
    @property
    def write(self) -> bool: ...
    @property
    def auth(self) -> bool: ...
    @property
    def params(self) -> tuple[Mapping[str, Any], ...]: ...
    @property
    def body(self) -> Mapping[str, Any] | None: ...
    @property
    def documented(self) -> bool: ...


__all__ = [
    "API_FIELDS",
    "DocumentedRoute",
    "ERRORS",
    "MAX_REASON_LENGTH",
    "NAME",
    "SERVICE_BODY",
    "document",
    "error",
    "query",
]

#: The fields of a service in the API (close to Nova's os-services): every one is
#: always present (nullable ones as null). A subset of ``ServiceStatus.as_dict``,
#: which sgctl prints in full.
API_FIELDS = (
    "id",
    "uuid",
    "host",
    "binary",
    "topic",
    "status",
    "state",
    "reason",
    "age",
    "updated_at",
    "created_at",
    "disabled_reason",
    "forced_down",
    "version",
    "check_failure",
    "zone",
    "driver",
)

#: Longest ``disabled_reason`` accepted: the model's one rule for free text.
MAX_REASON_LENGTH = MAX_TEXT_LENGTH

#: The schema of a host, binary or topic name.
NAME = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH}


def query(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    """A query parameter."""
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def error(description: str) -> dict[str, Any]:
    """An error answer (``{"error": {...}}``)."""
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


#: Parameters of path templates, by name: every ``{name}`` in a route's path must be here.
PATH_PARAMS: dict[str, dict[str, Any]] = {
    "uuid": {
        "name": "uuid",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
        "description": "The service's stable external id.",
    },
    "name": {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": ["app.js", "style.css"]},
        "description": "The asset.",
    },
}
#: The errors every read and change of services may answer.
ERRORS = {
    "400": error("Bad input; `error.field` names the field."),
    "401": error("No valid bearer token."),
    "503": error("The store or the driver is unreachable."),
}
#: An answer of one service.
SERVICE_BODY = {
    "description": "The service",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"service": {"$ref": "#/components/schemas/Service"}},
                "required": ["service"],
            }
        }
    },
}

_BASE: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "servicegroup sg-api",
        "version": "1",
        "description": "Service records and their liveness, shaped like Nova's os-services.",
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {
                            "code": {"type": "integer"},
                            "message": {"type": "string"},
                            "field": {"type": "string"},
                        },
                        "required": ["code", "message"],
                    }
                },
                "required": ["error"],
            },
            "Action": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "uuid": {"type": "string"},
                    "host": {"type": "string"},
                    "binary": {"type": "string"},
                    "action": {
                        "type": "string",
                        "enum": ["disable", "enable", "force_down", "force_up", "delete", "prune"],
                    },
                    "actor": {"type": "string", "description": "The API token's name, or sgctl's unix user."},
                    "via": {"type": "string", "enum": ["api", "os-services", "sgctl", "library"]},
                    "why": {"type": "string", "nullable": True},
                    "at": {"type": "string", "format": "date-time", "nullable": True},
                },
                "required": ["id", "uuid", "host", "binary", "action", "actor", "via", "why", "at"],
            },
            "Service": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "uuid": {"type": "string"},
                    "host": {"type": "string"},
                    "binary": {"type": "string"},
                    "topic": {"type": "string"},
                    "status": {"type": "string", "enum": ["enabled", "disabled"]},
                    "state": {"type": "string", "enum": ["up", "down", "unknown"]},
                    "reason": {"type": "string"},
                    "age": {"type": "number", "nullable": True},
                    "updated_at": {"type": "string", "format": "date-time", "nullable": True},
                    "created_at": {"type": "string", "format": "date-time", "nullable": True},
                    "disabled_reason": {"type": "string", "nullable": True},
                    "forced_down": {"type": "boolean"},
                    "version": {"type": "integer"},
                    "check_failure": {
                        "type": "string",
                        "nullable": True,
                        "description": "Why the agent's local health check failed, while it holds "
                        "the service down (reason check_failed).",
                    },
                    "zone": {"type": "string", "description": "The availability zone it reports."},
                    "driver": {
                        "type": "string",
                        "nullable": True,
                        "description": "The liveness driver it beats through (during a driver roll "
                        "each record is judged by its own); null for records from before it was kept.",
                    },
                },
                "required": list(API_FIELDS),
            },
        },
    },
    "security": [{"bearer": []}],
}


_PATH_PARAM = re.compile(r"{(\w+)}")


def document(routes: Iterable[DocumentedRoute]) -> dict[str, Any]:
    """The whole document, with one ``paths`` entry per documented route and method."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not route.documented:
            continue
        item = paths.setdefault(route.path, {})
        names = _PATH_PARAM.findall(route.path)
        if names:
            item["parameters"] = [PATH_PARAMS[name] for name in names]
        for method in route.methods:
            operation: dict[str, Any] = {"summary": route.summary}
            if route.params:
                operation["parameters"] = [dict(p) for p in route.params]
            if route.body is not None:
                operation["requestBody"] = dict(route.body)
            operation["responses"] = dict(route.responses)
            if not route.auth:
                operation["security"] = []
            item[method.lower()] = operation
    return {**_BASE, "paths": paths}
