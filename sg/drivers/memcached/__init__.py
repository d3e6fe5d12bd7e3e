"""The ``memcached`` driver (aiomcache): a member is a key with a TTL.

- :mod:`~sg.drivers.memcached.keys`: member keys and their placement on servers.
- :mod:`~sg.drivers.memcached.url`: the URL grammar and its options.
- :mod:`~sg.drivers.memcached.client`: the aiomcache adaptation (the only module
  that imports aiomcache; what aiomcache 0.8.2 does and the fixes).
- :mod:`~sg.drivers.memcached.driver`: :class:`MemcachedDriver`.
"""

from sg.drivers.memcached.driver import MAX_RELATIVE_EXPIRY, MemcachedDriver, member_ttl
from sg.drivers.memcached.keys import member_key, pick_server
from sg.drivers.memcached.url import MemcachedOptions, parse_url

__all__ = [
    "MAX_RELATIVE_EXPIRY",
    "MemcachedDriver",
    "MemcachedOptions",
    "member_key",
    "member_ttl",
    "parse_url",
    "pick_server",
]
