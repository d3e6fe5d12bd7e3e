"""Who may read and who may change, for the routes of :mod:`sg.api.events` and
:mod:`sg.api.compute`.

Both take an :class:`AuthCheck`: a callable ``check(request, write)`` that answers
whether the request may go on. :class:`TokenCheck` is the one sg-api uses: bearer
tokens compared in constant time, reads open when ``open_reads``. The token is read
from ``Authorization: Bearer TOKEN`` or, for OpenStack clients, ``X-Auth-Token: TOKEN``
(see :func:`presented_token`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Protocol

from starlette.requests import Request

__all__ = ["NOAUTH_TOKEN", "AuthCheck", "TokenCheck", "presented_token"]

#: What keystoneauth's ``none`` auth plugin sends as ``X-Auth-Token`` (keystoneauth1
#: ``noauth.NoAuth.get_token``): no token at all, never a credential.
NOAUTH_TOKEN = "notused"  # noqa: S105 (a placeholder, not a secret)


class AuthCheck(Protocol):
    """Whether a request may read (``write=False``) or change (``write=True``)."""

    def __call__(self, request: Request, write: bool) -> bool:
        """``True`` if the request may go on; the route answers 401 otherwise."""


def presented_token(request: Request) -> str | None:
    """The token a request presents, or ``None``.

    ``Authorization: Bearer TOKEN`` first (sg-api's own scheme), then OpenStack's
    ``X-Auth-Token`` header, where :data:`NOAUTH_TOKEN` (the ``none`` auth plugin's
    placeholder) counts as no token.
    """
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        return token if scheme.lower() == "bearer" and token else None
    token = request.headers.get("x-auth-token", "").strip()
    return token if token and token != NOAUTH_TOKEN else None


class TokenCheck:
    """An :class:`AuthCheck` over a set of tokens; tokens are never logged or echoed."""

    def __init__(self, tokens: Iterable[str], *, open_reads: bool = False) -> None:
        # Digests make every comparison the same length, so timing leaks nothing.
        self._digests = [hashlib.sha256(t.encode()).digest() for t in tokens]
        self.open_reads = open_reads

    def __call__(self, request: Request, write: bool) -> bool:
        """``True`` for a read under ``open_reads``, else only for a known token."""
        if not write and self.open_reads:
            return True
        token = presented_token(request)
        if token is None:
            return False
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        matched = False
        for known in self._digests:
            matched |= hmac.compare_digest(known, digest)
        return matched
