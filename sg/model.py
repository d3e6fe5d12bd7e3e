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
    "MAX_TEXT_LENGTH",
    "MAX_VERSION",
    "Member",
    "Reason",
    "Service",
    "ServiceEvent",
    "ServiceKey",
    "ServiceStatus",
    "State",
    "Verdict",
    "escape_text",
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


def validate_name(field_name: str, value: object) -> str:
    """Return ``value`` if it is an acceptable name, else raise :class:`InvalidName`.

    A name is a non-empty ``str`` of at most :data:`MAX_NAME_LENGTH` characters with
    no control characters and no leading or trailing white space. Any other Unicode
    (``/``, ``..``, spaces inside, non-ASCII) is allowed: backends encode names.
    """
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
