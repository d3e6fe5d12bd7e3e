"""Nova's os-services (compute API v2.1) over a :class:`ServiceGroup`, so that the
OpenStack CLI works against sg-api without Keystone::

    openstack --os-auth-type none --os-endpoint http://HOST:PORT/v2.1 compute service list
    openstack --os-auth-type admin_token --os-token TOKEN --os-endpoint http://HOST:PORT/v2.1 \\
        compute service set --disable --disable-reason maintenance HOST BINARY

The wire contract, read from Nova (``nova/api/openstack/compute/services.py``),
openstacksdk 4.22 (``openstack/compute/v2/service.py``, ``_proxy.py``) and
python-openstackclient 10.5 (``openstackclient/compute/v2/service.py``):

- ``GET /v2.1`` and ``/v2.1/``: the version document. The SDK refuses to start
  without it; it negotiates the highest microversion both sides know (2.69 for
  services) and, from 2.53 on, addresses services by UUID.
- ``GET /v2.1/os-services[?host=H&binary=B]``: ``{"services": [SERVICE, ...]}``.
- ``PUT /v2.1/os-services/{uuid}`` with ``{"status": "enabled"|"disabled",
  "disabled_reason": R}`` and/or ``{"forced_down": bool}``: ``{"service": SERVICE}``.
  ``disabled_reason`` needs ``status`` ``disabled`` (else 400).
- ``DELETE /v2.1/os-services/{uuid}``: 204; 409 while the service is up or unknown
  (stop it first), 404 if there is none.

``SERVICE`` is ``{"id": UUID, "binary", "host", "zone", "status", "state",
"updated_at", "disabled_reason", "forced_down"}``. Where Nova says only ``up`` or
``down``, ``state`` here may also be ``unknown`` (a backend unreachable, a mass event):
never ``up`` without both liveness signals. ``zone`` comes from ``zone_of`` (by default
the service's own, from its ``[[service]]`` ``zone``; Nova's ``internal`` unless set).

Answers always have the 2.53+ shapes (UUID ids, ``forced_down`` present), whatever
microversion is asked for in 2.1-2.69; the requested one is echoed in
``OpenStack-API-Version`` and ``X-OpenStack-Nova-API-Version``. The pre-2.53 action
URLs (``PUT /os-services/enable`` etc.) are not served. Errors are Nova's:
``{"badRequest": {"code": 400, "message": ...}}``.

Access is the given :class:`~sg.api.auth.AuthCheck`: reads are ``write=False``,
changes ``write=True``. OpenStack clients send the token as ``X-Auth-Token``; the
``none`` plugin sends ``notused``, which is no token (so only ``open_reads`` lets it
list).
"""

from __future__ import annotations

import json
import re
import uuid as uuidlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sg.api.auth import AuthCheck
from sg.api.errors import ROUTE_KEY
from sg.errors import BackendUnavailable, InvalidName, NotFound, Refused
from sg.group import ServiceGroup
from sg.lazylog import get_logger
from sg.model import DEFAULT_ZONE, Actor, Service, ServiceStatus, validate_name, validate_text

__all__ = [
    "DEFAULT_ZONE",
    "MAX_MICROVERSION",
    "MIN_MICROVERSION",
    "PREFIX",
    "OsServices",
    "nova_service",
]

log = get_logger("sg.api.compute")

PREFIX = "/v2.1"
#: The microversions announced: 2.1 so that clients' feature checks for 2.11
#: (forced_down) pass, 2.69 the highest the SDK's service resource knows.
MIN_MICROVERSION = (2, 1)
MAX_MICROVERSION = (2, 69)
#: Longest ``disabled_reason`` (Nova's column is 255 characters).
MAX_REASON_LENGTH = 255
MAX_BODY = 64 * 1024
MEDIA_TYPE = "application/vnd.openstack.compute+json;version=2.1"
#: Nova's fault names, the key of its error documents.
_FAULTS = {
    400: "badRequest",
    401: "unauthorized",
    404: "itemNotFound",
    406: "notAcceptable",
    409: "conflictingRequest",
    413: "overLimit",
    503: "serviceUnavailable",
}
_VERSION = re.compile(r"^(\d+)\.(\d+)$")

Handler = Callable[[Request], Awaitable[Response]]
ZoneOf = Callable[[Service], str]
Who = Callable[[Request], str | None]


class NovaError(Exception):
    """An error answer in Nova's shape."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> JSONResponse:
        """``{"<fault name>": {"code", "message"}}``."""
        fault = _FAULTS.get(self.status, "computeFault")
        return JSONResponse({fault: {"code": self.status, "message": self.message}}, status_code=self.status)


def _text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def requested_microversion(request: Request) -> tuple[int, int]:
    """The microversion a request asks for (2.1 when it asks for none).

    ``OpenStack-API-Version: compute 2.53`` (several ``service version`` pairs may be
    comma-separated) wins over the older ``X-OpenStack-Nova-API-Version: 2.53``;
    ``latest`` is the highest. Outside 2.1-2.69 is a 406, as Nova answers.
    """
    asked: str | None = None
    for part in request.headers.get("openstack-api-version", "").split(","):
        service, _, value = part.strip().partition(" ")
        if service.lower() == "compute" and value.strip():
            asked = value.strip()
    if asked is None:
        asked = request.headers.get("x-openstack-nova-api-version", "").strip() or None
    if asked is None:
        return MIN_MICROVERSION
    if asked.lower() == "latest":
        return MAX_MICROVERSION
    match = _VERSION.match(asked)
    if match is None:
        raise NovaError(400, f"invalid microversion {asked!r}: expected MAJOR.MINOR such as 2.53, or latest")
    version = (int(match.group(1)), int(match.group(2)))
    if not MIN_MICROVERSION <= version <= MAX_MICROVERSION:
        raise NovaError(
            406,
            f"Version {asked} is not supported by the API. Minimum is {_text(MIN_MICROVERSION)} "
            f"and maximum is {_text(MAX_MICROVERSION)}.",
        )
    return version


def _nova_time(when: datetime | None) -> str | None:
    # Nova prints naive UTC with microseconds: 2026-11-30T03:41:07.000000.
    if when is None:
        return None
    return when.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def nova_service(status: ServiceStatus, zone: str) -> dict[str, Any]:
    """A service as Nova's os-services shows it (2.53+: the id is the UUID)."""
    s, v = status.service, status.verdict
    return {
        "id": s.uuid,
        "binary": s.binary,
        "host": s.host,
        "zone": zone,
        "status": "disabled" if s.disabled else "enabled",
        "state": v.state,
        "updated_at": _nova_time(s.updated_at),
        "disabled_reason": s.disabled_reason,
        "forced_down": s.forced_down,
    }


def _service_id(request: Request) -> str:
    raw = request.path_params["service_id"]
    try:
        return str(uuidlib.UUID(raw))
    except ValueError:
        message = f"Invalid uuid {raw}: services are addressed by UUID (microversion 2.53+)"
        raise NovaError(400, message) from None


async def _json_object(request: Request) -> dict[str, Any]:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise NovaError(413, f"request body larger than {MAX_BODY} bytes")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise NovaError(400, "the request body must be a JSON object") from None
    if not isinstance(document, dict):
        raise NovaError(400, "the request body must be a JSON object")
    return document


def _update_fields(body: dict[str, Any]) -> tuple[str | None, str | None, bool | None]:
    """Validate a PUT body (Nova 2.53's schema and rules); return status, reason, forced_down."""
    for name in body:
        if name not in ("status", "disabled_reason", "forced_down"):
            raise NovaError(400, f"unknown field {name!r} (known: status, disabled_reason, forced_down)")
    if "status" not in body and "forced_down" not in body:
        raise NovaError(
            400, "At least one of 'status' or 'forced_down' must be specified in the request body."
        )
    status = body.get("status")
    if "status" in body and status not in ("enabled", "disabled"):
        raise NovaError(400, "status must be 'enabled' or 'disabled'")
    reason = body.get("disabled_reason")
    if "disabled_reason" in body:
        if status != "disabled":
            raise NovaError(400, f"Specifying 'disabled_reason' with status '{status}' is invalid.")
        if not isinstance(reason, str) or not 1 <= len(reason) <= MAX_REASON_LENGTH:
            raise NovaError(400, f"disabled_reason must be a string of 1 to {MAX_REASON_LENGTH} characters")
        try:
            # The model's one free-text rule, as on /v1 and in sgctl.
            validate_text("disabled_reason", reason, MAX_REASON_LENGTH)
        except InvalidName as exc:
            raise NovaError(400, str(exc)) from None
    forced_down = body.get("forced_down")
    if "forced_down" in body and not isinstance(forced_down, bool):
        raise NovaError(400, "forced_down must be true or false")
    return status, reason, forced_down


class OsServices:
    """The handlers, bound to one group, one access check and one zone function.

    :meth:`serve` runs a handler with the microversion, the access check and Nova's
    error documents; sg-api's route table (:mod:`sg.api.routes`, through
    :mod:`sg.api.operators`) routes each os-services path to it.
    """

    def __init__(
        self, group: ServiceGroup, check: AuthCheck, zone_of: ZoneOf, who: Who = lambda request: None
    ) -> None:
        self.group = group
        self.check = check
        self.zone_of = zone_of
        #: The name of the token a request presents, for the audit trail.
        self.who = who

    def _actor(self, request: Request) -> Actor:
        return Actor(self.who(request) or "anonymous", "os-services")

    async def serve(self, request: Request, handler: Handler, *, write: bool, auth: bool = True) -> Response:
        """Run ``handler`` with the microversion, the access check (unless not ``auth``)
        and sg's errors as Nova's error documents."""
        route = str(request.scope.get(ROUTE_KEY, "other"))
        version = MIN_MICROVERSION
        try:
            version = requested_microversion(request)
            if auth and not self.check(request, write):
                client = request.client.host if request.client else None
                log.info("unauthorized", route=route, method=request.method, client=client)
                raise NovaError(401, "The request you have made requires authentication.")
            response = await handler(request)
        except NovaError as exc:
            response = exc.response()
        except InvalidName as exc:
            response = NovaError(400, str(exc)).response()
        except NotFound as exc:
            response = NovaError(404, str(exc)).response()
        except Refused as exc:
            unavailable = isinstance(exc, BackendUnavailable) or isinstance(
                exc.__cause__, BackendUnavailable | TimeoutError
            )
            response = NovaError(503 if unavailable else 409, str(exc)).response()
        except BackendUnavailable as exc:
            log.warning("backend_unavailable", route=route, error=str(exc))
            response = NovaError(503, str(exc)).response()
        response.headers["OpenStack-API-Version"] = f"compute {_text(version)}"
        response.headers["X-OpenStack-Nova-API-Version"] = _text(version)
        response.headers["Vary"] = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"
        return response

    def _json(self, status: ServiceStatus) -> dict[str, Any]:
        return nova_service(status, self.zone_of(status.service))

    async def version(self, request: Request) -> Response:
        """``GET /v2.1``: the version document clients discover the microversions from."""
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "version": {
                    "id": "v2.1",
                    "status": "CURRENT",
                    "version": _text(MAX_MICROVERSION),
                    "min_version": _text(MIN_MICROVERSION),
                    "updated": "2013-07-23T11:33:21Z",
                    "links": [{"rel": "self", "href": f"{base}{PREFIX}/"}],
                    "media-types": [{"base": "application/json", "type": MEDIA_TYPE}],
                }
            }
        )

    async def list_services(self, request: Request) -> Response:
        """``GET /v2.1/os-services[?host=&binary=]``: one ``ServiceGroup.list()``."""
        filters: dict[str, str] = {}
        for key, value in request.query_params.multi_items():
            if key not in ("host", "binary"):
                raise NovaError(400, f"unknown query parameter {key!r} (known: host, binary)")
            if key in filters:
                raise NovaError(400, f"query parameter {key!r} given more than once")
            filters[key] = validate_name(key, value)
        statuses = await self.group.list(**filters)
        return JSONResponse({"services": [self._json(s) for s in statuses]})

    async def update_service(self, request: Request) -> Response:
        """``PUT /v2.1/os-services/{uuid}``: enable, disable (with a reason), force down or up."""
        service_id = _service_id(request)
        status, reason, forced_down = _update_fields(await _json_object(request))
        key = (await self.group.get_by_uuid(service_id)).service.key
        # One store write for both changes (and their audit rows): never half a change.
        await self.group.update_admin(
            key,
            disabled=None if status is None else status == "disabled",
            reason=reason,
            forced_down=forced_down,
            actor=self._actor(request),
        )
        log.info(
            "service_updated",
            host=key.host,
            binary=key.binary,
            status=status,
            forced_down=forced_down,
            via="os-services",
        )
        return JSONResponse({"service": self._json(await self.group.get_by_uuid(service_id))})

    async def delete_service(self, request: Request) -> Response:
        """``DELETE /v2.1/os-services/{uuid}``: the record and the driver member; 409 if live."""
        current = await self.group.get_by_uuid(_service_id(request))
        try:
            await self.group.delete(current.service, actor=self._actor(request))
        except Refused as exc:
            if exc.__cause__ is not None:
                raise
            # The library's message offers `force`, which os-services has no way to ask for.
            verdict = current.verdict
            raise NovaError(
                409,
                f"Service {current.service.uuid} ({current.service.host} {current.service.binary}) is "
                f"{verdict.state} ({verdict.reason}): stop it first; only a down service is deleted "
                "here (sgctl service delete --force overrides)",
            ) from exc
        return Response(status_code=204)
