"""The ``zookeeper`` driver (aiozk): a member is an ephemeral znode.

- :mod:`~sg.drivers.zookeeper.names`: member node names, encoded safely.
- :mod:`~sg.drivers.zookeeper.url`: the URL grammar and its options.
- :mod:`~sg.drivers.zookeeper.client`: the aiozk adaptation (the only module that
  imports aiozk; what aiozk 0.32.0 does and the workarounds).
- :mod:`~sg.drivers.zookeeper.driver`: :class:`ZooKeeperDriver`.
"""

from sg.drivers.zookeeper.driver import ZooKeeperDriver
from sg.drivers.zookeeper.names import decode_name, encode_name, member_name, parse_member_name
from sg.drivers.zookeeper.url import DigestAuth, ZooKeeperOptions, parse_url

__all__ = [
    "DigestAuth",
    "ZooKeeperDriver",
    "ZooKeeperOptions",
    "decode_name",
    "encode_name",
    "member_name",
    "parse_member_name",
    "parse_url",
]
