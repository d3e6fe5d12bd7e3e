"""Exceptions raised by servicegroup.

Every backend translates its own exceptions into these at its boundary
(``raise ... from exc``), so callers never need to import asyncpg, aiozk or
aiomcache to handle a failure.
"""

from __future__ import annotations

__all__ = [
    "BackendTimeout",
    "BackendUnavailable",
    "ConfigError",
    "InvalidName",
    "NotFound",
    "Refused",
    "SGError",
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
