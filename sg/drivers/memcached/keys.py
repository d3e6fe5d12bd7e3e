"""Member keys of the memcached driver and their placement: pure functions, no I/O.

A member key names topic, host and binary under a prefix. Each name is
percent-encoded from its UTF-8 bytes (lone surrogates included), keeping only
``A-Z a-z 0-9 _ . - ~``, so any Python ``str`` gives printable ASCII with no
space, control character or ``:``; the three encoded names joined by ``:`` are
therefore distinct for distinct triples. A key longer than memcached's 250 bytes
becomes the SHA-256 of that encoding under a different marker (``h`` instead of
``m``), so a hashed key never equals a plain one.

Keys are placed on servers by rendezvous (highest random weight) hashing over
the servers' names, so adding or removing a server moves only that server's keys,
and the order of servers in the URL does not matter.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from urllib.parse import quote

__all__ = ["MAX_KEY_BYTES", "PREFIX_PATTERN", "member_key", "pick_server"]

#: memcached's limit on a key, in bytes.
MAX_KEY_BYTES = 250
#: What a key prefix may be: short, ASCII, no separator.
PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _escape(name: str) -> str:
    # surrogatepass: any str encodes, and the encoding stays one-to-one.
    return quote(name.encode("utf-8", "surrogatepass"), safe="")


def member_key(prefix: str, topic: str, host: str, binary: str) -> bytes:
    """The memcached key of the member ``(topic, host, binary)`` under ``prefix``.

    Safe for any ``str`` names (spaces, newlines, unicode, any length): the result
    is printable ASCII of at most :data:`MAX_KEY_BYTES` bytes, and two different
    triples never share a key.
    """
    if not PREFIX_PATTERN.fullmatch(prefix):
        raise ValueError(f"invalid key prefix {prefix!r}: use 1-64 of A-Z a-z 0-9 _ . -")
    body = f"{_escape(topic)}:{_escape(host)}:{_escape(binary)}"
    key = f"{prefix}:m:{body}"
    if len(key) > MAX_KEY_BYTES:
        key = f"{prefix}:h:{hashlib.sha256(body.encode('ascii')).hexdigest()}"
    return key.encode("ascii")


def _weight(server: bytes, key: bytes) -> int:
    # A key never holds NUL, so (server, key) maps to one message.
    digest = hashlib.blake2b(server + b"\0" + key, digest_size=8).digest()
    return int.from_bytes(digest, "big")


def pick_server(servers: Sequence[str], key: bytes) -> int:
    """Index in ``servers`` of the server that holds ``key`` (highest random weight).

    ``servers`` are stable names such as ``"mc1:11211"``; the choice depends on
    the names, not on their order.
    """
    if not servers:
        raise ValueError("no servers")
    best, best_weight = 0, (-1, "")
    for index, name in enumerate(servers):
        weight = (_weight(name.encode("utf-8"), key), name)
        if weight > best_weight:
            best, best_weight = index, weight
    return best
