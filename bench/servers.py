"""The servers every benchmark shares: private, on free loopback ports (sg.testing)."""

from __future__ import annotations

import contextlib
import shlex
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from sg.testing import MemcachedServer, PostgresServer, ZooKeeperServer


@dataclass
class Servers:
    """One PostgreSQL cluster, one memcached, one ZooKeeper (tickTime 200 ms: 0.4-10 s sessions)."""

    pg: PostgresServer
    mc: MemcachedServer
    zk: ZooKeeperServer

    async def database(self, name: str) -> str:
        """A fresh database ``name`` on the cluster; its URL."""
        conn = await asyncpg.connect(self.pg.url())
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.pg.url(name)


#: ZooKeeper's heap for the benchmarks. sg.testing starts it with -Xmx128m, enough for
#: tests; with 100,000 members and several 2.6 MB get_children answers queued for
#: readers whose event loop is busy listing, that heap ran out and the server died
#: (twice, 2026-11-30). Raised here rather than in sg.testing, which is not ours to change.
ZK_HEAP = "-Xmx512m"


def _java_with_heap(directory: Path, java: str) -> str:
    """A ``java`` that swaps any ``-Xmx`` for :data:`ZK_HEAP` and ``exec``s (same pid)."""
    wrapper = directory / "java"
    wrapper.write_text(
        "#!/bin/bash\n"
        'args=(); for a in "$@"; do [[ $a == -Xmx* ]] && a=' + ZK_HEAP + '; args+=("$a"); done\n'
        f'exec {shlex.quote(java)} "${{args[@]}}"\n'
    )
    wrapper.chmod(0o755)
    return str(wrapper)


@contextlib.contextmanager
def started() -> Iterator[Servers]:
    """Start the three servers; stop them (by pid) and remove their data after."""
    with contextlib.ExitStack() as stack:
        wrappers = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sg-bench-java-")))
        pg = stack.enter_context(PostgresServer())
        mc = stack.enter_context(MemcachedServer(memory_mb=512))
        zk = ZooKeeperServer()
        zk.java = _java_with_heap(wrappers, zk.java)
        stack.enter_context(zk)
        yield Servers(pg, mc, zk)
