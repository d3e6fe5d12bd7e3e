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
- ``sg_zookeeper_ensemble``: a 3-server ZooKeeper quorum of the test's own
  (:class:`ZooKeeperEnsemble`: find, kill, stop and restart the leader or any member).
- ``sg_postgres_ha``: a PostgreSQL primary and a streaming standby of the test's own
  (:class:`PostgresHA`: a two-host ``target_session_attrs=read-write`` URL, stop the
  primary, promote the standby).

:class:`VerdictSampler` reads a group at a fixed rate and counts false ``up``, false
``down`` and ``unknown`` readings against the services a test killed.

Server binaries that are missing skip the tests that need them, except with
``CI=true``, where a missing server is a failure.
"""

from sg.testing.ensemble import ZooKeeperEnsemble
from sg.testing.memcached import MemcachedServer
from sg.testing.pgha import PostgresHA
from sg.testing.sampler import VerdictSampler
from sg.testing.servers import PostgresServer, free_port, wait_until
from sg.testing.zookeeper import ZooKeeperServer

__all__ = [
    "MemcachedServer",
    "PostgresHA",
    "PostgresServer",
    "VerdictSampler",
    "ZooKeeperEnsemble",
    "ZooKeeperServer",
    "free_port",
    "wait_until",
]
