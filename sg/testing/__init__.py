"""Test support for servicegroup and for projects that embed it.

Installed as a pytest plugin (entry point ``pytest11``), it offers:

- ``sg_memory_group``: a :class:`~sg.ServiceGroup` on ``memory://`` store and
  driver, private to the test, for fast unit tests of code that joins a group.
- ``sg_memcached`` / ``sg_memcached3`` (one or three session memcached servers) with
  ``sg_memcached_url`` / ``sg_memcached3_url`` (a private key prefix per test), and
  ``sg_memcached_factory`` for servers a test may kill or restart.
- ``sg_postgres``: a throwaway PostgreSQL cluster for the session (Debian's
  ``postgresql`` binaries, a free loopback port); ``sg_postgres_url`` gives each
  test a fresh database in it.
- ``sg_zookeeper``: a private ZooKeeper for the session (Debian's ``zookeeper``
  package, tickTime 200 ms so 0.4-10 s sessions); ``sg_zookeeper_url`` gives each
  test its own chroot. :class:`ZooKeeperServer` can be stopped and restarted on
  the same port for outage tests.

Server binaries that are missing skip the tests that need them, except with
``CI=true``, where a missing server is a failure.
"""

from sg.testing.memcached import MemcachedServer
from sg.testing.servers import PostgresServer, free_port, wait_until
from sg.testing.zookeeper import ZooKeeperServer

__all__ = ["MemcachedServer", "PostgresServer", "ZooKeeperServer", "free_port", "wait_until"]
