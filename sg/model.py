"""Value types: services, verdicts and statuses, plus name validation.

Names that come from outside (host, binary, topic) are validated here and only
here; backends may then rely on them being non-empty printable text of bounded
length, and encode them for their own key or path syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, NamedTuple

from sg.errors import InvalidName

__all__ = [
    "MAX_NAME_LENGTH",
    "MAX_VERSION",
    "Member",
    "Reason",
    "Service",
    "ServiceEvent",
    "ServiceKey",
    "ServiceStatus",
    "State",
    "Verdict",
    "service_from_row",
    "status_of",
    "validate_name",
    "validate_version",
]

#: Longest host, binary or topic accepted, in characters (Nova allows 255).
MAX_NAME_LENGTH = 255

#: Largest ``version`` accepted: a signed 32-bit integer, what every store can hold.
MAX_VERSION = 2**31 - 1

#: Exactly the Unicode categories Cc (C0, DEL, C1), Cs (surrogates), Zl and Zp:
#: characters that break log lines, terminals and key syntaxes. A regex, because
#: names are validated for every row read and a per-character loop was the
#: largest cost of listing 10,000 services.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")

State = Literal["up", "down", "unknown"]
Reason = Literal[
    "ok",
    "forced_down",
    "check_failed",
    "stale",
    "not_joined",
    "left",
    "never_reported",
    "store_unreachable",
    "driver_unreachable",
]


#: Names that passed :func:`validate_name` (bounded; cleared when full). Every row a
#: listing reads names a host, a binary and a topic: checking them again was a third
#: of the cost of listing 10,000 services, and a name once valid stays valid.
_VALID_NAMES: set[str] = set()
_VALID_NAMES_MAX = 200_000


def validate_name(field_name: str, value: object) -> str:
    """Return ``value`` if it is an acceptable name, else raise :class:`InvalidName`.

    A name is a non-empty ``str`` of at most :data:`MAX_NAME_LENGTH` characters with
    no control characters and no leading or trailing white space. Any other Unicode
    (``/``, ``..``, spaces inside, non-ASCII) is allowed: backends encode names.
    """
    # `type() is str`: a str subclass could hash like a valid name and differ from it.
    if type(value) is str and value in _VALID_NAMES:
        return value
    if not isinstance(value, str):
        raise InvalidName(field_name, value, "must be a string")
    if not value:
        raise InvalidName(field_name, value, "must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidName(field_name, value, f"longer than {MAX_NAME_LENGTH} characters")
    if value != value.strip():
        raise InvalidName(field_name, value, "has leading or trailing white space")
    bad = _FORBIDDEN.search(value)
    if bad is not None:
        raise InvalidName(field_name, value, f"contains control character {bad.group()!r}")
    if type(value) is str:
        if len(_VALID_NAMES) >= _VALID_NAMES_MAX:
            _VALID_NAMES.clear()
        _VALID_NAMES.add(value)
    return value


def validate_version(value: object) -> int:
    """Return ``value`` if it is an acceptable version (0 to :data:`MAX_VERSION`), else
    raise :class:`InvalidName` naming the field ``version``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidName("version", value, "must be an integer")
    if not 0 <= value <= MAX_VERSION:
        raise InvalidName("version", value, f"must be from 0 to {MAX_VERSION}")
    return value


class ServiceKey(NamedTuple):
    """The identity of a service: ``(host, binary)`` is unique."""

    host: str
    binary: str

    @classmethod
    def of(cls, host: str, binary: str) -> ServiceKey:
        """Build a key from validated names."""
        return cls(validate_name("host", host), validate_name("binary", binary))


@dataclass(frozen=True, slots=True)
class Member:
    """What a heartbeat reports: the service's identity, its group and its version.

    The values that ``join()`` and :class:`~sg.heartbeat.Heartbeat` take; validated
    once, here.
    """

    host: str
    binary: str
    topic: str
    version: int = 0

    def __post_init__(self) -> None:
        validate_name("host", self.host)
        validate_name("binary", self.binary)
        validate_name("topic", self.topic)
        validate_version(self.version)

    @property
    def key(self) -> ServiceKey:
        """The ``(host, binary)`` identity."""
        return ServiceKey(self.host, self.binary)


@dataclass(frozen=True, slots=True)
class Service:
    """One service record as the store holds it.

    ``age`` is seconds since ``updated_at`` computed by the store's own clock at
    read time (``None`` if it never reported). ``left`` is true after a clean stop
    or ``leave()`` until the next heartbeat. ``check_failure`` is why the agent's
    local health check last failed, while it holds the service down; the next
    heartbeat clears it.
    """

    host: str
    binary: str
    topic: str
    id: int = 0
    uuid: str = ""
    version: int = 0
    disabled: bool = False
    disabled_reason: str | None = None
    forced_down: bool = False
    left: bool = False
    report_count: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    age: float | None = None
    check_failure: str | None = None

    def __post_init__(self) -> None:
        validate_name("host", self.host)
        validate_name("binary", self.binary)
        validate_name("topic", self.topic)
        validate_version(self.version)

    @property
    def key(self) -> ServiceKey:
        """The ``(host, binary)`` identity."""
        return ServiceKey(self.host, self.binary)

    @property
    def member(self) -> Member:
        """The record's identity, group and version, as a heartbeat reports them."""
        return Member(self.host, self.binary, self.topic, self.version)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why a service is up, down or unknown.

    ``driver_seen`` is ``True``/``False`` when the driver answered, ``None`` when it
    was not asked or could not be reached. ``detail`` carries an error message for
    the ``*_unreachable`` reasons and the failed check's reason for ``check_failed``.
    """

    state: State
    reason: Reason
    age: float | None = None
    driver_seen: bool | None = None
    detail: str | None = None

    @property
    def is_up(self) -> bool:
        """True only for state ``up``; ``unknown`` is never up."""
        return self.state == "up"


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """A service record with its verdict; ``is_up`` is computed from both signals."""

    service: Service
    verdict: Verdict
    is_up: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_up", self.verdict.state == "up")

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready row: the record's fields plus ``status``, ``state`` and ``reason``."""
        s, v = self.service, self.verdict
        return {
            "id": s.id,
            "uuid": s.uuid,
            "host": s.host,
            "binary": s.binary,
            "topic": s.topic,
            "status": "disabled" if s.disabled else "enabled",
            "state": v.state,
            "reason": v.reason,
            "age": None if v.age is None else round(v.age, 3),
            "updated_at": None if s.updated_at is None else s.updated_at.isoformat(),
            "created_at": None if s.created_at is None else s.created_at.isoformat(),
            "disabled": s.disabled,
            "disabled_reason": s.disabled_reason,
            "forced_down": s.forced_down,
            "left": s.left,
            "check_failure": s.check_failure,
            "version": s.version,
            "report_count": s.report_count,
            "driver_seen": v.driver_seen,
            "detail": v.detail,
        }


@dataclass(frozen=True, slots=True)
class ServiceEvent:
    """A change seen by ``ServiceGroup.watch``: a service's state now and before.

    ``previous`` is ``None`` the first time a service is seen; ``removed`` is true
    when its record was deleted (``status`` is then its last known status).
    """

    status: ServiceStatus
    previous: State | None
    removed: bool = False


# -- fast construction for listings ----------------------------------------------------
#
# A listing builds a Service, a Verdict and a ServiceStatus per row; the dataclasses'
# own __init__ (keyword arguments, a global lookup per field, __post_init__) was most
# of the library's cost of listing 10,000 services. These build the same frozen
# values, checked the same way, with positional values and one bound setter.

_new = object.__new__
_set = object.__setattr__


def service_from_row(
    id: int,
    uuid: str,
    host: str,
    binary: str,
    topic: str,
    version: int,
    disabled: bool,
    disabled_reason: str | None,
    forced_down: bool,
    left: bool,
    report_count: int,
    created_at: datetime | None,
    updated_at: datetime | None,
    check_failure: str | None,
    age: float | None,
) -> Service:
    """A :class:`Service` equal to ``Service(host=..., ...)`` with the same checks of
    its names and version, built faster (positional values, in the order of the
    store's columns)."""
    valid = _VALID_NAMES
    if not (host in valid and binary in valid and topic in valid):
        validate_name("host", host)
        validate_name("binary", binary)
        validate_name("topic", topic)
    if type(version) is not int or not 0 <= version <= MAX_VERSION:
        validate_version(version)
    s = _new(Service)
    _set(s, "host", host)
    _set(s, "binary", binary)
    _set(s, "topic", topic)
    _set(s, "id", id)
    _set(s, "uuid", uuid)
    _set(s, "version", version)
    _set(s, "disabled", disabled)
    _set(s, "disabled_reason", disabled_reason)
    _set(s, "forced_down", forced_down)
    _set(s, "left", left)
    _set(s, "report_count", report_count)
    _set(s, "created_at", created_at)
    _set(s, "updated_at", updated_at)
    _set(s, "age", age)
    _set(s, "check_failure", check_failure)
    return s


def status_of(service: Service, verdict: Verdict) -> ServiceStatus:
    """``ServiceStatus(service, verdict)``, built faster (see :func:`service_from_row`)."""
    status = _new(ServiceStatus)
    _set(status, "service", service)
    _set(status, "verdict", verdict)
    _set(status, "is_up", verdict.state == "up")
    return status
