"""A PostgreSQL primary and a streaming standby on loopback, for failover tests.

The primary is a :class:`~sg.testing.servers.PostgresServer` (``initdb`` with trust
auth, whose ``pg_hba.conf`` already trusts replication from 127.0.0.1). The standby
is ``pg_basebackup -R -X stream`` of it, which writes ``standby.signal`` and
``primary_conninfo``, started on its own port: a hot standby that accepts
read-only connections and replays the primary's WAL.

:meth:`PostgresHA.url` names both hosts with ``target_session_attrs=read-write``,
the libpq form asyncpg 0.32 accepts too (``connect_utils._parse_hostlist`` splits
``host:port,host:port``; ``SessionAttribute`` has ``read-write``, checked per new
connection by ``default_transaction_read_only`` and ``in_hot_standby``). A client
that connects while only the standby runs gets the primary's connection error, so
it fails until the standby is promoted, and then lands on it: no client restarts.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time

from sg.testing.servers import PostgresServer, _port_open, wait_until

__all__ = ["DATABASE", "PostgresHA"]

#: The database the fixture creates on the primary before the base backup.
DATABASE = "sg"


class PostgresHA:
    """A primary and a streaming standby. Use as a context manager, or ``start()`` /
    ``close()``. Only processes this code started are stopped, through ``pg_ctl``."""

    def __init__(self) -> None:
        self.primary = PostgresServer()
        self.standby = PostgresServer()
        #: Monotonic time the standby finished promoting, once it did.
        self.promoted_at: float | None = None

    # -- lifecycle --------------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> PostgresHA:
        """initdb and start the primary, create :data:`DATABASE`, base-backup it into the
        standby, start the standby, and wait until it streams."""
        try:
            self.primary.start()
            self.psql(self.primary, f'CREATE DATABASE "{DATABASE}"')
            if self.standby.user is not None:
                shutil.chown(self.standby.tmp, self.standby.user)
            self.standby._run(
                "pg_basebackup",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.primary.port),
                "-U",
                self.primary.superuser,
                "-D",
                str(self.standby.datadir),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            )
            self.standby.start_server()
            wait_until(self.streaming, timeout, "the standby streams from the primary", interval=0.05)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop both servers at once and remove their data."""
        self.standby.stop()
        self.primary.stop()

    def __enter__(self) -> PostgresHA:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- URLs ---------------------------------------------------------------------------

    @property
    def hosts(self) -> str:
        """``127.0.0.1:PRIMARY,127.0.0.1:STANDBY``: primary first, as a deployment lists it."""
        return f"127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"

    def url(self, database: str = DATABASE, **options: object) -> str:
        """A store URL naming both hosts with ``target_session_attrs=read-write``
        (extra ``options`` are appended to the query, e.g. ``timeout=1``)."""
        query = "&".join(["target_session_attrs=read-write", *(f"{k}={v}" for k, v in options.items())])
        return f"postgresql://{self.primary.superuser}@{self.hosts}/{database}?{query}"

    # -- inspection ---------------------------------------------------------------------

    def psql(self, server: PostgresServer, sql: str, database: str = "postgres", timeout: float = 10) -> str:
        """Run ``sql`` on ``server`` with ``psql`` and return its unaligned output."""
        command = [
            str(server.bindir / "psql"),
            "-X",
            "-q",
            "-t",
            "-A",
            "-h",
            "127.0.0.1",
            "-p",
            str(server.port),
            "-U",
            server.superuser,
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ]
        done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=timeout)
        return done.stdout.strip()

    def _query(self, server: PostgresServer, sql: str) -> str | None:
        if not _port_open(server.port):
            return None
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            return self.psql(server, sql, timeout=2)
        return None

    def in_recovery(self, server: PostgresServer) -> bool | None:
        """``pg_is_in_recovery()`` of ``server``; ``None`` if it does not answer."""
        answer = self._query(server, "SELECT pg_is_in_recovery()")
        return None if answer is None else answer == "t"

    def streaming(self) -> bool:
        """True when the primary has a streaming standby."""
        answer = self._query(
            self.primary, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
        )
        return answer is not None and answer != "0"

    # -- failover -----------------------------------------------------------------------

    def stop_primary(self, mode: str = "fast") -> float:
        """Stop the primary (``pg_ctl -m fast`` disconnects clients; ``immediate`` is a
        crash); return the monotonic time it was down. Its data stays (no restart
        here: a promoted standby and the old primary must never both take writes)."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"mode must be smart, fast or immediate, not {mode!r}")
        self.primary._run("pg_ctl", "-D", str(self.primary.datadir), "-m", mode, "-w", "stop")
        return time.monotonic()

    def promote(self, timeout: float = 60.0) -> float:
        """Promote the standby and wait until it accepts writes; return the monotonic
        time it did (also kept in :attr:`promoted_at`)."""
        self.standby._run("pg_ctl", "-D", str(self.standby.datadir), "-w", "-t", str(int(timeout)), "promote")
        self.wait_promoted(timeout)
        assert self.promoted_at is not None
        return self.promoted_at

    def wait_promoted(self, timeout: float = 60.0) -> None:
        """Wait until the standby is out of recovery (a primary)."""
        wait_until(lambda: self.in_recovery(self.standby) is False, timeout, "the standby promoted", 0.05)
        if self.promoted_at is None:
            self.promoted_at = time.monotonic()
