"""A private memcached server for tests: Debian's ``memcached`` on a free loopback port.

The server is a child process this code started; it is stopped by its own pid.
``restart()`` comes back on the same port with every key lost, as a real restart.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from sg.testing.servers import MissingServer, _port_open, free_port, stop_pid, wait_until

__all__ = ["MemcachedServer"]


def _memcached_binary() -> str:
    found = shutil.which("memcached") or (
        "/usr/bin/memcached" if Path("/usr/bin/memcached").exists() else None
    )
    if found is None:
        raise MissingServer("memcached not found: apt-get install memcached")
    return found


class MemcachedServer:
    """``memcached -l 127.0.0.1 -p PORT -U 0`` (plus ``-u root`` when root).

    With ``verbose=True`` it runs with ``-vv`` and logs every command to
    :attr:`log_path`, so tests can count the requests it received.
    """

    def __init__(self, *, verbose: bool = False, memory_mb: int = 64) -> None:
        self.binary = _memcached_binary()
        self.port = free_port()
        self.verbose = verbose
        self.memory_mb = memory_mb
        self.tmp = Path(tempfile.mkdtemp(prefix="sg-mc-"))
        self.log_path = self.tmp / "memcached.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, as it goes in a driver URL."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's pid while running."""
        return None if self.proc is None or self.proc.poll() is not None else self.proc.pid

    def start(self) -> MemcachedServer:
        """Start and return once the port accepts connections."""
        if self.pid is not None:
            return self
        command = [self.binary, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", str(self.memory_mb)]
        if os.geteuid() == 0:
            command += ["-u", "root"]
        if self.verbose:
            command.append("-vv")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        try:
            wait_until(lambda: _port_open(self.port), 15, f"memcached on port {self.port}")
        except TimeoutError:
            self.stop()
            raise
        return self

    def kill(self) -> None:
        """SIGKILL the server (as a crash would) and wait for it to exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        if self.proc is not None:
            stop_pid(self.proc)

    def restart(self) -> MemcachedServer:
        """Kill and start again on the same port: every key is lost."""
        self.kill()
        return self.start()

    def request_lines(self, command: str) -> int:
        """With ``verbose``: how many ``command`` requests (e.g. ``get``) it logged so far."""
        if not self.verbose:
            raise RuntimeError("start the server with verbose=True to count requests")
        marker = f" {command} ".encode()
        count = 0
        with self.log_path.open("rb") as log:
            for line in log:
                if line.startswith(b"<") and marker in line[:40]:
                    count += 1
        return count

    def close(self) -> None:
        """Stop and remove the temporary directory."""
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> MemcachedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
