"""Token authentication for ``sg-api``: who may read, who may change, and who they are.

A token is read from ``Authorization: Bearer TOKEN`` (sg-api's own scheme) or, for
OpenStack clients, ``X-Auth-Token: TOKEN`` (see :func:`presented_token`). Each token
has a name (``[api] tokens``), which the audit trail records as who made a change.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Protocol

from starlette.requests import Request

from sg.api.errors import ApiError

__all__ = ["NOAUTH_TOKEN", "AuthCheck", "TokenAuth", "presented_token"]

#: What keystoneauth's ``none`` auth plugin sends as ``X-Auth-Token`` (keystoneauth1
#: ``noauth.NoAuth.get_token``): no token at all, never a credential.
NOAUTH_TOKEN = "notused"  # noqa: S105 (a placeholder, not a secret)


class AuthCheck(Protocol):
    """Whether a request may read (``write=False``) or change (``write=True``)."""

    def __call__(self, request: Request, write: bool) -> bool:
        """``True`` if the request may go on; the route answers 401 otherwise."""
        ...


def presented_token(request: Request) -> str | None:
    """The token a request presents, or ``None``.

    ``Authorization: Bearer TOKEN`` first, then OpenStack's ``X-Auth-Token`` header,
    where :data:`NOAUTH_TOKEN` (the ``none`` auth plugin's placeholder) counts as no
    token.
    """
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        return token if scheme.lower() == "bearer" and token else None
    token = request.headers.get("x-auth-token", "").strip()
    return token if token and token != NOAUTH_TOKEN else None


def _digest(token: str) -> bytes:
    # Digests make every comparison the same length, so timing leaks nothing.
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


class TokenAuth:
    """Named tokens, compared in constant time; tokens are never logged or echoed.

    ``tokens`` are ``(name, token)`` pairs. An instance is an :class:`AuthCheck`.
    """

    def __init__(self, tokens: Iterable[tuple[str, str]], open_reads: bool) -> None:
        self._digests = [(name, _digest(token)) for name, token in tokens]
        self.open_reads = open_reads

    def identify(self, request: Request) -> str | None:
        """The name of the token ``request`` presents, or ``None`` when it presents no
        known token. Every known token is compared, whichever matches."""
        token = presented_token(request)
        if token is None:
            return None
        digest = _digest(token)
        found: str | None = None
        for name, known in self._digests:
            if hmac.compare_digest(known, digest) and found is None:
                found = name
        return found

    def __call__(self, request: Request, write: bool) -> bool:
        """``True`` for a read under ``open_reads``, else only for a known token."""
        if not write and self.open_reads:
            return True
        return self.identify(request) is not None

    def check(self, request: Request, *, write: bool) -> None:
        """Raise a 401 :class:`ApiError` unless the request may go on."""
        if self(request, write):
            return
        if presented_token(request) is None:
            raise ApiError(
                401,
                "a token is required (Authorization: Bearer TOKEN, or X-Auth-Token: TOKEN)",
                headers={"WWW-Authenticate": 'Bearer realm="sg-api"'},
            )
        raise ApiError(
            401,
            "invalid token",
            headers={"WWW-Authenticate": 'Bearer realm="sg-api", error="invalid_token"'},
        )

    def may_read(self, request: Request) -> bool:
        """Whether ``request`` may read (for answers that only show details to readers)."""
        return self(request, False)
