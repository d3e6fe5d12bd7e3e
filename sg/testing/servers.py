"""Throwaway servers for tests: started on free loopback ports, private to the run.

Every server here is a child process that this code started; it is stopped by
its own pid and its data directory removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["MissingServer", "PostgresServer", "free_port", "wait_until"]


class MissingServer(RuntimeError):
    """A server binary is not installed; the message says which package provides it."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll ``predicate`` until it is true; raise ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not true within {timeout:g}s")
        time.sleep(interval)


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stop_pid(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM the process we started, then SIGKILL it if it lingers."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def _pg_bindir() -> Path:
    explicit = os.environ.get("SG_PG_BINDIR")
    candidates = [Path(explicit)] if explicit else []
    root = Path("/usr/lib/postgresql")
    if not explicit and root.is_dir():
        versions = sorted((p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
        candidates += [p / "bin" for p in reversed(versions)]
    found = None if explicit else shutil.which("initdb")
    if found:
        candidates.append(Path(found).parent)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    raise MissingServer("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")


class PostgresServer:
    """A private PostgreSQL cluster: ``initdb`` in a temp dir, trust auth, fsync off.

    As root, the server runs as the ``postgres`` user (initdb refuses root).
    """

    def __init__(self) -> None:
        self.bindir = _pg_bindir()
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="sg-pg-"))
        self.datadir = self.tmp / "data"
        self.user = "postgres" if os.geteuid() == 0 else None
        self.superuser = "postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> PostgresServer:
        """initdb and start; returns when it accepts connections."""
        if self.user is not None:
            shutil.chown(self.tmp, self.user)
        self._run(
            "initdb", "-D", str(self.datadir), "-A", "trust", "-U", self.superuser, "--no-sync", "-E", "UTF8"
        )
        self.start_server()
        return self

    def start_server(self) -> None:
        """Start (or restart) the server process on the same port and data."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.tmp} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.datadir),
            "-l",
            str(self.tmp / "log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )
        wait_until(lambda: _port_open(self.port), 30, f"PostgreSQL on port {self.port}")

    def stop_server(self) -> None:
        """Stop the server as an operator would (fast: disconnect clients, flush), keeping
        its data for :meth:`start_server`."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        """A URL for ``database`` on this server."""
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        """Stop immediately and remove the data directory."""
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
