"""The ``memcached://`` URL and its options.

``memcached://mc1:11211,mc2:11211?prefix=sg&pool_size=2``

==========  ===========================================================  =======
option      meaning                                                      default
==========  ===========================================================  =======
(netloc)    servers as ``host[:port]``, comma-separated; IPv6 in ``[]``  port 11211
prefix      key prefix, 1-64 of ``A-Z a-z 0-9 _ . -``, so that groups     sg
            can share servers
pool_size   connections per server, 1-64                                 2
==========  ===========================================================  =======

Deadlines and the key expiry are not URL options: they come from
:class:`~sg.timings.Timings`. Unknown options are errors that name them.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from sg.drivers.memcached.keys import PREFIX_PATTERN
from sg.errors import ConfigError
from sg.redact import redact_url

__all__ = ["DEFAULT_PORT", "MAX_POOL_SIZE", "MemcachedOptions", "parse_url"]

DEFAULT_PORT = 11211
MAX_POOL_SIZE = 64


@dataclass(frozen=True, slots=True)
class MemcachedOptions:
    """What a ``memcached://`` URL says: servers as ``(host, port)``, key prefix, pool size."""

    servers: tuple[tuple[str, int], ...]
    prefix: str = "sg"
    pool_size: int = 2

    def __post_init__(self) -> None:
        if not self.servers:
            raise ConfigError("memcached driver: no servers given")
        names = [f"{h}:{p}" for h, p in self.servers]
        if len(set(names)) != len(names):
            raise ConfigError(f"memcached driver: a server is listed twice in {','.join(names)}")
        if not PREFIX_PATTERN.fullmatch(self.prefix):
            raise ConfigError(f"memcached driver: prefix {self.prefix!r} must be 1-64 of A-Z a-z 0-9 _ . -")
        if not 1 <= self.pool_size <= MAX_POOL_SIZE:
            raise ConfigError(f"memcached driver: pool_size must be 1-{MAX_POOL_SIZE}, got {self.pool_size}")

    @property
    def server_names(self) -> tuple[str, ...]:
        """``host:port`` of each server; the names keys are hashed against."""
        return tuple(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.servers)


def parse_url(url: str) -> MemcachedOptions:
    """Parse ``memcached://host[:port][,host[:port]...][/]?prefix=P&pool_size=N``."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"driver URL {shown!r} is malformed: {exc}") from None
    if parts.path not in ("", "/") or parts.fragment:
        raise ConfigError(f"driver URL {shown!r}: memcached takes servers and options only")
    if "@" in parts.netloc:
        raise ConfigError(f"driver URL {shown!r}: memcached takes no user or password")
    servers = tuple(_parse_server(item, shown) for item in parts.netloc.split(","))
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise ConfigError(f"driver URL {shown!r}: malformed options: {exc}") from exc
    unknown = sorted(set(query) - {"prefix", "pool_size"})
    if unknown:
        raise ConfigError(f"driver URL {shown!r}: unknown option(s) {unknown}; known: pool_size, prefix")
    values: dict[str, str] = {}
    for name, given in query.items():
        if len(given) != 1:
            raise ConfigError(f"driver URL {shown!r}: option {name!r} given more than once")
        values[name] = given[0]
    pool_size = 2
    if "pool_size" in values:
        try:
            pool_size = int(values["pool_size"])
        except ValueError as exc:
            raise ConfigError(f"driver URL {shown!r}: pool_size must be an integer") from exc
    return MemcachedOptions(servers=servers, prefix=values.get("prefix", "sg"), pool_size=pool_size)


def _parse_server(item: str, shown: str) -> tuple[str, int]:
    if not item:
        raise ConfigError(f"driver URL {shown!r}: empty server name (expected host[:port],...)")
    if item.startswith("["):
        host, bracket, rest = item[1:].partition("]")
        if not bracket or not host or (rest and not rest.startswith(":")):
            raise ConfigError(f"driver URL {shown!r}: bad server {item!r}")
        port_text = rest[1:] if rest else ""
    else:
        host, _, port_text = item.partition(":")
        if not host or ":" in port_text:
            raise ConfigError(f"driver URL {shown!r}: bad server {item!r} (IPv6 goes in brackets)")
    if not port_text:
        return host.lower(), DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"driver URL {shown!r}: bad port in {item!r}")
    return host.lower(), int(port_text)
