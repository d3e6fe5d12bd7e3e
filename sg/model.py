"""Value types: services, verdicts and statuses, plus name validation.

Names that come from outside (host, binary, topic) are validated here and only
here; backends may then rely on them being non-empty printable text of bounded
length, and encode them for their own key or path syntax.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

from sg.errors import InvalidName

__all__ = [
    "ACTIONS",
    "DEFAULT_ZONE",
    "MAX_NAME_LENGTH",
    "MAX_TEXT_LENGTH",
    "MAX_VERSION",
    "NEW_SERVICE_REASON",
    "RECOVERING",
    "Action",
    "Actor",
    "Member",
    "Presence",
    "ServiceAction",
    "Reason",
    "Service",
    "ServiceEvent",
    "ServiceKey",
    "ServiceStatus",
    "State",
    "StoreContext",
    "Verdict",
    "collection_deferred",
    "escape_text",
    "mutable_twin",
    "service_from_row",
    "status_of",
    "validate_name",
    "validate_text",
    "validate_version",
]

#: Longest host, binary or topic accepted, in characters (Nova allows 255).
MAX_NAME_LENGTH = 255

#: Longest free text accepted (``disabled_reason``), in characters (Nova's column is 255).
MAX_TEXT_LENGTH = 255

#: Largest ``version`` accepted: a signed 32-bit integer, what every store can hold.
MAX_VERSION = 2**31 - 1

#: Exactly the Unicode categories Cc (C0, DEL, C1), Cs (surrogates), Zl and Zp:
#: characters that break log lines, terminals and key syntaxes. A regex, because
#: names are validated for every row read and a per-character loop was the
#: largest cost of listing 10,000 services.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")

#: The availability zone of a service that names none (Nova's for non-compute services).
DEFAULT_ZONE = "internal"
#: ``disabled_reason`` of a service registered while new services start disabled.
NEW_SERVICE_REASON = "new service"

State = Literal["up", "down", "unknown"]
#: What a driver says of one member: held, not held, cannot tell (``None``), or lost
#: in a mass event it knows of, such as a server that just restarted (``"recovering"``).
Presence = bool | None | Literal["recovering"]
#: The :data:`Presence` of a member a driver lost in a mass event it knows of.
RECOVERING: Literal["recovering"] = "recovering"
#: What the audit trail records: the admin changes.
Action = Literal["disable", "enable", "force_down", "force_up", "delete", "prune"]
ACTIONS: tuple[Action, ...] = ("disable", "enable", "force_down", "force_up", "delete", "prune")
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
    "store_recovering",
    "driver_recovering",
    "mass_stale",
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


def validate_text(field_name: str, value: object, max_length: int = MAX_TEXT_LENGTH) -> str:
    """Return ``value`` if it is acceptable free text (such as ``disabled_reason``), else
    raise :class:`InvalidName` naming ``field_name``.

    The one rule for free text, from the CLI and the API alike: a ``str`` of at most
    ``max_length`` characters, with no control character (C0 including ESC and new
    lines, DEL, C1), no line or paragraph separator and no surrogate (so it is valid
    UTF-8: a lone surrogate from a JSON body or ``surrogateescape``-decoded bytes from
    argv is refused here, not by the store's encoder).
    """
    if not isinstance(value, str):
        raise InvalidName(field_name, value, "must be a string")
    if len(value) > max_length:
        raise InvalidName(field_name, value[:32] + "...", f"longer than {max_length} characters")
    bad = _FORBIDDEN.search(value)
    if bad is not None:
        char = bad.group()
        what = "a surrogate (not valid UTF-8)" if "\ud800" <= char <= "\udfff" else "a control character"
        raise InvalidName(field_name, value, f"contains {what} {bad.group()!r}")
    return value


def escape_text(value: str) -> str:
    """``value`` with the characters :func:`validate_text` refuses shown as escapes, for a
    terminal: text stored before the rule (or written around it) cannot drive it."""
    return _FORBIDDEN.sub(lambda m: repr(m.group())[1:-1], value)


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
    #: The availability zone (shown by os-services).
    zone: str = DEFAULT_ZONE
    #: Nova's ``enable_new_services``: when false, a record this member creates starts
    #: disabled with reason :data:`NEW_SERVICE_REASON`; an existing record is untouched.
    enable_new: bool = True

    def __post_init__(self) -> None:
        validate_name("host", self.host)
        validate_name("binary", self.binary)
        validate_name("topic", self.topic)
        validate_name("zone", self.zone)
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
    #: The driver the service's heartbeat beats through (its scheme, such as
    #: ``zookeeper``), written at registration; ``None`` for records from before it
    #: was kept. During a driver roll each record is judged by its own driver.
    driver: str | None = None
    zone: str = DEFAULT_ZONE

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
        return Member(self.host, self.binary, self.topic, self.version, self.zone)


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
            "zone": s.zone,
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
            "driver": s.driver,
            "version": s.version,
            "report_count": s.report_count,
            "driver_seen": v.driver_seen,
            "detail": v.detail,
        }


@dataclass(frozen=True, slots=True)
class StoreContext:
    """What the store says about itself, read in the same query as the records (for the
    fleet guard, :mod:`sg.guard`).

    ``total`` counts the store's records; ``newest_age`` is the age of its newest
    stamp (``None`` if none ever reported). ``resumed`` is set when beats landed
    within the recovery window after a silence longer than ``service_down_time``:
    ``(oldest, newest)`` ages of the stamps those beats followed.
    """

    total: int = 0
    newest_age: float | None = None
    resumed: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class ServiceEvent:
    """A change seen by ``ServiceGroup.watch``: a service's state now and before.

    ``previous`` is ``None`` the first time a service is seen; ``removed`` is true
    when its record was deleted (``status`` is then its last known status).
    """

    status: ServiceStatus
    previous: State | None
    removed: bool = False


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes an admin change, through what, and why: what the audit trail records.

    ``name`` is the API token's name or the unix user of ``sgctl``; ``via`` the
    interface (``api``, ``os-services``, ``sgctl``, ``library``).
    """

    name: str
    via: str
    why: str | None = None

    def __post_init__(self) -> None:
        validate_name("actor", self.name)
        validate_name("via", self.via)


@dataclass(frozen=True, slots=True)
class ServiceAction:
    """One row of the audit trail: an admin change of a service, stamped by the store's
    clock. It outlives the service (a ``delete`` is recorded too)."""

    id: int
    uuid: str
    host: str
    binary: str
    action: Action
    actor: str
    via: str
    why: str | None
    at: datetime | None

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready row."""
        return {
            "id": self.id,
            "uuid": self.uuid,
            "host": self.host,
            "binary": self.binary,
            "action": self.action,
            "actor": self.actor,
            "via": self.via,
            "why": self.why,
            "at": None if self.at is None else self.at.isoformat(),
        }


# -- fast construction for listings ----------------------------------------------------
#
# A listing builds a Service, a Verdict and a ServiceStatus per row; the dataclasses'
# own __init__ (keyword arguments, one object.__setattr__ call per field, since they
# are frozen, and __post_init__) was most of the library's cost of listing 10,000
# services. The builders fill a mutable twin of the class, with the same slots in the
# same order (a plain attribute store into a slot is a few nanoseconds, against about
# a hundred for object.__setattr__), then give the object its real class: CPython
# allows the __class__ assignment exactly because the two layouts are the same. What
# comes out is an ordinary frozen instance, equal to one the constructor builds,
# checked the same way.


def mutable_twin(cls: type) -> type:
    """A class with exactly the slots of the slotted class ``cls`` (same names, same
    order, same base) and none of its methods: an instance of it can be filled by plain
    attribute stores, then made a ``cls`` by assigning ``__class__``."""
    twin = type(f"_{cls.__name__}Twin", (object,), {"__slots__": cls.__slots__})  # type: ignore[attr-defined]
    probe = twin()
    probe.__class__ = cls  # fails here, at import, if the layouts ever differ
    return twin


@contextmanager
def collection_deferred() -> Iterator[None]:
    """Hold off the cyclic garbage collector for a block that builds many objects and
    never awaits (a listing's rows), then give it back as it was.

    Every 700 objects built trigger a young collection, and the tens of thousands a
    listing keeps (a Service, a Verdict and a ServiceStatus per row) reached the old
    generation and its full collections: a third of the CPU of listing 10,000 services.
    Deferred, they are collected at the next allocation after the block, and they
    are freed by reference counting if the caller drops them before (the usual case).
    The same device as Mercurial's ``util.nogc`` for its large containers.
    """
    enabled = gc.isenabled()
    if enabled:
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_new = object.__new__
_ServiceTwin: Any = mutable_twin(Service)
_VerdictTwin: Any = mutable_twin(Verdict)
_StatusTwin: Any = mutable_twin(ServiceStatus)


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
    driver: str | None,
    zone: str,
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
    s = _new(_ServiceTwin)
    s.host = host
    s.binary = binary
    s.topic = topic
    s.id = id
    s.uuid = uuid
    s.version = version
    s.disabled = disabled
    s.disabled_reason = disabled_reason
    s.forced_down = forced_down
    s.left = left
    s.report_count = report_count
    s.created_at = created_at
    s.updated_at = updated_at
    s.age = age
    s.check_failure = check_failure
    s.driver = driver
    s.zone = zone
    s.__class__ = Service
    return s  # type: ignore[no-any-return]


def status_of(service: Service, verdict: Verdict) -> ServiceStatus:
    """``ServiceStatus(service, verdict)``, built faster (see :func:`service_from_row`)."""
    status = _new(_StatusTwin)
    status.service = service
    status.verdict = verdict
    status.is_up = verdict.state == "up"
    status.__class__ = ServiceStatus
    return status  # type: ignore[no-any-return]
