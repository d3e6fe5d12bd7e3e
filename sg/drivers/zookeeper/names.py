"""Znode names of members: pure functions, no I/O.

A member lives at ``<chroot>/<topic>/<host>:<binary>``; each of the three names
is encoded by :func:`encode_name` so that no name (``..``, ``a/b``, NUL, what
ZooKeeper forbids) can escape its path, and :func:`decode_name` gives it back
exactly.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import unquote

from sg.model import ServiceKey

__all__ = ["SEPARATOR", "allowed_in_name", "decode_name", "encode_name", "member_name", "parse_member_name"]

#: Separates the encoded host and binary in a member's node name.
SEPARATOR = ":"
_SAFE_ASCII = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~+,=@")
_ALL_SAFE = re.compile(r"[A-Za-z0-9\-_.~+,=@]+")


def allowed_in_name(ch: str) -> bool:
    """Whether ``ch`` stays as it is in an encoded name (else it becomes ``%XX``)."""
    if ch in _SAFE_ASCII:
        return True
    code = ord(ch)
    # ZooKeeper rejects these ranges in node names (PathUtils.validatePath). It checks
    # Java's UTF-16 chars, so a character above U+FFFF is a surrogate pair there and
    # rejected too (BadArguments on every beat): those are encoded as well.
    return 0xA0 <= code <= 0xFFFF and not 0xD800 <= code <= 0xF8FF and not 0xFFF0 <= code <= 0xFFFF


def _encode_name(name: str) -> str:
    """Encode a host, binary or topic as one znode name that cannot escape its path.

    Characters outside a safe set (``/``, ``%``, ``:``, spaces, controls, NUL, and
    what ZooKeeper forbids) become ``%XX`` per UTF-8 byte; a name made only of dots
    (``.``, ``..``) has its dots encoded too. :func:`decode_name` reverses it exactly.
    """
    if _ALL_SAFE.fullmatch(name) and name.strip("."):
        return name
    out = "".join(
        ch if allowed_in_name(ch) else "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        for ch in name
    )
    if out and set(out) == {"."}:
        out = "%2E" * len(out)
    return out


# Cached by assignment rather than by decorator: mutmut 3 does not mutate decorated
# functions, and this one is what keeps a name inside its path (docs/testing.md).
encode_name = functools.lru_cache(maxsize=65536)(_encode_name)


def decode_name(encoded: str) -> str:
    """The name :func:`encode_name` encoded."""
    return unquote(encoded, encoding="utf-8", errors="strict")


def member_name(key: ServiceKey) -> str:
    """The node name of a member: ``<host>:<binary>``, each encoded."""
    return f"{encode_name(key.host)}{SEPARATOR}{encode_name(key.binary)}"


def parse_member_name(name: str) -> ServiceKey:
    """The key of a member node name (the inverse of :func:`member_name`)."""
    host, sep, binary = name.partition(SEPARATOR)
    if not sep:
        raise ValueError(f"not a member node name: {name!r}")
    return ServiceKey(decode_name(host), decode_name(binary))
