"""Bearer-token authentication for ``sg-api``."""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request

from sg.api.errors import ApiError

__all__ = ["TokenAuth"]


class TokenAuth:
    """Bearer tokens, compared in constant time; tokens are never logged or echoed."""

    def __init__(self, tokens: tuple[str, ...], open_reads: bool) -> None:
        # Digests make every comparison the same length, so timing leaks nothing.
        self._digests = [hashlib.sha256(t.encode()).digest() for t in tokens]
        self.open_reads = open_reads

    def check(self, request: Request, *, write: bool) -> None:
        """Raise a 401 :class:`ApiError` unless the request may go on."""
        if not write and self.open_reads:
            return
        header = request.headers.get("authorization")
        if header is None:
            raise ApiError(
                401,
                "a bearer token is required (Authorization: Bearer TOKEN)",
                headers={"WWW-Authenticate": 'Bearer realm="sg-api"'},
            )
        scheme, _, presented = header.partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            raise ApiError(
                401,
                "the Authorization header must be 'Bearer TOKEN'",
                headers={"WWW-Authenticate": 'Bearer realm="sg-api", error="invalid_request"'},
            )
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        matched = False
        for known in self._digests:
            matched |= hmac.compare_digest(known, digest)
        if not matched:
            raise ApiError(
                401,
                "invalid token",
                headers={"WWW-Authenticate": 'Bearer realm="sg-api", error="invalid_token"'},
            )

    def may_read(self, request: Request) -> bool:
        """Whether ``request`` may read (for answers that only show details to readers)."""
        try:
            self.check(request, write=False)
        except ApiError:
            return False
        return True
