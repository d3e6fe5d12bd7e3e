"""Exceptions raised by servicegroup.

Every backend translates its own exceptions into these at its boundary
(``raise ... from exc``), so callers never need to import asyncpg, aiozk or
aiomcache to handle a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = [
    "BackendTimeout",
    "BackendUnavailable",
    "ConfigError",
    "InvalidName",
    "LeaveRefused",
    "NotFound",
    "Refused",
    "SGError",
    "translate_errors",
]


class SGError(Exception):
    """Base class of every error servicegroup raises on purpose."""


class ConfigError(SGError):
    """A configuration value, file, or URL is wrong; the message names it."""


class InvalidName(SGError, ValueError):
    """A host, binary or topic name is not acceptable; ``field`` names which."""

    def __init__(self, field: str, value: object, why: str) -> None:
        self.field = field
        self.value = value
        self.why = why
        super().__init__(f"invalid {field} {value!r}: {why}")


class BackendUnavailable(SGError):
    """A store or driver backend could not be reached or failed."""

    def __init__(self, backend: str, detail: str) -> None:
        self.backend = backend
        self.detail = detail
        super().__init__(f"{backend} unavailable: {detail}")


class BackendTimeout(BackendUnavailable):
    """A store or driver backend did not answer within its deadline."""


class NotFound(SGError):
    """The named service does not exist."""


class Refused(SGError):
    """The operation was refused, for example deleting a live service unforced."""


class LeaveRefused(BackendUnavailable, Refused):
    """A delete was refused because the driver could not remove the member: nothing
    was deleted. Both a refusal and a backend fault, so a caller that maps errors by
    type (sg-api: 503) sees the fault first, one that catches :class:`Refused` still
    catches it."""


@contextmanager
def translate_errors(backend: str, what: str, faults: tuple[type[BaseException], ...]) -> Iterator[None]:
    """Re-raise a backend's own exceptions (``faults``) as :class:`BackendUnavailable`.

    The one way every backend maps a foreign exception at its boundary
    (``raise ... from``); :class:`SGError` and cancellation pass through untouched.
    """
    try:
        yield
    except SGError:
        raise
    except faults as exc:
        raise BackendUnavailable(backend, f"{what}: {type(exc).__name__}: {exc}") from exc
