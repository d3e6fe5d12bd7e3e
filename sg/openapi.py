"""The OpenAPI 3.0 document ``sg-api`` serves at ``/openapi.json``.

Written by hand, next to the handlers in :mod:`sg.rest`, so that it says exactly
what the handlers accept: schemathesis generates requests from it in the tests.
"""

from __future__ import annotations

from typing import Any

from sg.model import MAX_NAME_LENGTH

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
)

__all__ = ["API_FIELDS", "MAX_REASON_LENGTH", "OPENAPI"]

#: Longest ``disabled_reason`` accepted (Nova's column is 255 characters).
MAX_REASON_LENGTH = 255

_NAME = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH}


def _query(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


_UUID_PARAM = {
    "name": "uuid",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
    "description": "The service's stable external id.",
}
_ERRORS = {
    "400": _error("Bad input; `error.field` names the field."),
    "401": _error("No valid bearer token."),
    "503": _error("The store or the driver is unreachable."),
}
_SERVICE_BODY = {
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

OPENAPI: dict[str, Any] = {
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
                },
                "required": list(API_FIELDS),
            },
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/services": {
            "get": {
                "summary": "List services with their liveness (one library call).",
                "parameters": [
                    _query("host", _NAME, "Only this host."),
                    _query("binary", _NAME, "Only this binary."),
                    _query("topic", _NAME, "Only this topic."),
                    _query(
                        "state", {"type": "string", "enum": ["up", "down", "unknown"]}, "Only this state."
                    ),
                ],
                "responses": {
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
                    **_ERRORS,
                },
            }
        },
        "/v1/services/min-version": {
            "get": {
                "summary": "The lowest version of a binary, over live services with only_up.",
                "parameters": [
                    _query("binary", _NAME, "The binary.", required=True),
                    _query("only_up", {"type": "boolean"}, "Count only services that are up."),
                ],
                "responses": {
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
                    **_ERRORS,
                },
            }
        },
        "/v1/services/{uuid}": {
            "parameters": [_UUID_PARAM],
            "get": {
                "summary": "One service with its liveness.",
                "responses": {"200": _SERVICE_BODY, "404": _error("No such service."), **_ERRORS},
            },
            "put": {
                "summary": "Enable, disable or force down a service; updated_at never changes.",
                "requestBody": {
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
                "responses": {"200": _SERVICE_BODY, "404": _error("No such service."), **_ERRORS},
            },
            "delete": {
                "summary": "Delete the record and remove the driver member (leave).",
                "parameters": [
                    _query("force", {"type": "boolean"}, "Delete even if the service is up or unknown.")
                ],
                "responses": {
                    "204": {"description": "Deleted"},
                    "404": _error("No such service."),
                    "409": _error("The service is up (or unknown) and force was not given."),
                    **_ERRORS,
                },
            },
        },
        "/healthz": {
            "get": {
                "summary": "Whether this process and both backends answer (no token needed).",
                "security": [],
                "responses": {
                    "200": {"description": "Both backends answered"},
                    "503": {"description": "A backend is unreachable"},
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (request counts and latency, sg_service_up).",
                "responses": {"200": {"description": "Prometheus text format"}, "401": _ERRORS["401"]},
            }
        },
    },
}
