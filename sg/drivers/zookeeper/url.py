"""The ``zookeeper://`` URL and its options.

``zookeeper://zk1:2181,zk2:2181,zk3:2181/chroot?session_timeout=10&auth=digest:user:secret``

=================  =========================================================  ===============
option             meaning                                                    default
=================  =========================================================  ===============
(path)             the chroot every member lives under                        /servicegroup
session_timeout    requested session timeout, seconds (the server bounds it   10
                   to 2-20 ticks)
reconnect_max      longest wait between reconnect attempts, seconds           min(1, timeout/4)
auth               ``digest:USER:SECRET``: sent on every connection; members
                   are then writable by that user only, readable by anyone
=================  =========================================================  ===============

Deadlines are not URL options: they come from :class:`~sg.timings.Timings`.
Unknown options are errors that name them; the secret never appears in a message.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sg.drivers.zookeeper.names import allowed_in_name
from sg.errors import ConfigError
from sg.redact import redact_url

__all__ = ["DEFAULT_CHROOT", "DigestAuth", "ZooKeeperOptions", "parse_url"]

DEFAULT_CHROOT = "/servicegroup"
_KNOWN = "session_timeout, reconnect_max, auth"


@dataclass(frozen=True, slots=True)
class DigestAuth:
    """``digest:user:secret`` credentials; the secret never appears in ``repr``."""

    user: str
    secret: str

    def __repr__(self) -> str:
        return f"DigestAuth(user={self.user!r}, secret='***')"

    @property
    def credential(self) -> bytes:
        """What an ``AuthRequest`` carries."""
        return f"{self.user}:{self.secret}".encode()

    @property
    def acl_id(self) -> str:
        """The ``digest`` ACL id: ``user:base64(sha1(user:secret))``."""
        digest = hashlib.sha1(self.credential).digest()  # noqa: S324 - ZooKeeper's digest scheme
        return f"{self.user}:{base64.b64encode(digest).decode()}"


@dataclass(frozen=True, slots=True)
class ZooKeeperOptions:
    """Typed options of a ``zookeeper://`` URL (see the table in this module)."""

    hosts: str
    chroot: str = DEFAULT_CHROOT
    #: Requested session timeout in seconds (the server bounds it to 2-20 ticks).
    session_timeout: float = 10.0
    #: Longest wait between reconnect attempts; default min(1 s, session_timeout / 4).
    reconnect_max: float | None = None
    auth: DigestAuth | None = None

    @property
    def reconnect_cap(self) -> float:
        """The effective cap on the reconnect backoff."""
        return self.reconnect_max or min(1.0, self.session_timeout / 4)


def _positive(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"zookeeper option {name}={raw!r}: must be a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"zookeeper option {name}={raw!r}: must be a positive number of seconds")
    return value


def _parse_chroot(url: str, path: str) -> str:
    if path in ("", "/"):
        return DEFAULT_CHROOT
    segments = [s for s in path.split("/") if s]
    for seg in segments:
        if seg in (".", "..") or any(not allowed_in_name(ch) and ch not in "%:" for ch in seg):
            raise ConfigError(
                f"driver URL {redact_url(url)!r}: chroot segment {seg!r} is not a valid znode name"
            )
    return "/" + "/".join(segments)


def parse_url(url: str) -> ZooKeeperOptions:
    """Parse and validate a ``zookeeper://`` URL; unknown options are errors that name them."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"driver URL {shown!r} is malformed: {exc}") from None
    hosts = parts.netloc
    if "@" in hosts:
        # ZooKeeper has no URL credentials: aiozk would take "user:pass@host" as a host
        # name and put it (the password included) in every log line and verdict detail.
        raise ConfigError(
            f"driver URL {shown!r}: zookeeper takes no user:password@ in the URL; "
            "use ?auth=digest:USER:SECRET"
        )
    if not hosts:
        raise ConfigError(f"driver URL {shown!r}: no ZooKeeper servers; use 'zookeeper://host:2181/chroot'")
    for server in hosts.split(","):
        host, colon, port = server.rpartition(":") if ":" in server else (server, "", "")
        if not host or (colon and not (port.isdigit() and 0 < int(port) < 65536)):
            raise ConfigError(f"driver URL {shown!r}: bad server {server!r} (want host:port)")
    values: dict[str, Any] = {"hosts": hosts, "chroot": _parse_chroot(url, parts.path)}
    for name, raw in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if name in values:
            raise ConfigError(f"driver URL {shown!r}: option {name!r} given twice")
        if name in ("session_timeout", "reconnect_max"):
            values[name] = _positive(name, raw)
        elif name == "auth":
            scheme, _, rest = raw.partition(":")
            user, _, secret = rest.partition(":")
            if scheme != "digest" or not user or not secret:
                raise ConfigError(f"driver URL {shown!r}: auth must be 'digest:USER:SECRET'")
            values[name] = DigestAuth(user, secret)
        else:
            raise ConfigError(f"driver URL {shown!r}: unknown zookeeper option {name!r} (known: {_KNOWN})")
    return ZooKeeperOptions(**values)
