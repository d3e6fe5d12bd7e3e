"""A private ZooKeeper server for tests, from Debian's ``zookeeper`` package.

Java runs ``QuorumPeerMain`` with a private ``zoo.cfg`` (standalone, data in a
temp dir, a free loopback port, no admin server). The server is ready when the
``srvr`` four-letter word answers with ``Mode:`` (``ruok`` answers earlier, before
it serves). ``stop``/``start``/``restart`` keep the port and the data directory,
so sessions survive a restart exactly as they would in production; the process
is always stopped by the pid this code started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
from pathlib import Path

from sg.testing.servers import MissingServer, free_port, stop_pid, wait_until

__all__ = ["ZooKeeperServer", "expire_session", "four_letter_word", "session_password"]

ZK_JARS = ("/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-simple.jar")


def four_letter_word(port: int, word: str, timeout: float = 1.0) -> str:
    """Send a ZooKeeper four-letter word to 127.0.0.1:``port``; '' if it does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(word.encode())
            chunks = []
            while True:
                data = sock.recv(4096)
                if not data:
                    break
                chunks.append(data)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""


_MASK48 = (1 << 48) - 1


def session_password(session_id: int) -> bytes:
    """The password ZooKeeper 3.x gives ``session_id``.

    ``ZooKeeperServer.generatePasswd`` seeds ``java.util.Random`` with
    ``id ^ 0xB3415C00`` and takes 16 bytes: this is that generator, so a test can
    expire the session of another process knowing only its id (a node's
    ``ephemeralOwner``).
    """
    seed = ((session_id ^ 0xB3415C00) ^ 0x5DEECE66D) & _MASK48
    out = bytearray()
    while len(out) < 16:
        seed = (seed * 0x5DEECE66D + 0xB) & _MASK48
        rnd = seed >> 16
        for _ in range(min(4, 16 - len(out))):
            out.append(rnd & 0xFF)
            rnd >>= 8
    return bytes(out)


def _frame(payload: bytes) -> bytes:
    return struct.pack("!i", len(payload)) + payload


async def _attach_and_close(host: str, port: int, session_id: int, password: bytes, timeout: float) -> bytes:
    from aiozk import protocol

    connect = protocol.ConnectRequest(
        protocol_version=0,
        last_seen_zxid=0,
        timeout=2000,
        session_id=session_id,
        password=password,
        read_only=False,
    ).serialize()
    close = protocol.CloseRequest().serialize(1)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    received = b""
    try:
        writer.write(_frame(connect) + _frame(close))
        await writer.drain()
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(4096):
                received += chunk
    except ConnectionError:
        pass
    finally:
        writer.close()
    return received


async def expire_session(
    hosts: str, session_id: int, password: bytes | None = None, timeout: float = 5.0, attempts: int = 10
) -> bool:
    """Expire a live session now, as a lost one would: attach to it with its id and
    password and close it (both requests in one write). Returns ``True`` once
    ZooKeeper confirms the session is gone.

    ZooKeeper then deletes the session's ephemeral nodes and the owner's next
    reconnect finds the session gone. An owner that reconnects fast may re-attach
    between the two requests, and the close reply is not always delivered before
    the server drops the connection: so this repeats until either the close is
    acknowledged or a connect answers that the session no longer exists.
    """
    host, _, port = hosts.split(",")[0].rpartition(":")
    secret = password if password is not None else session_password(session_id)
    for _ in range(attempts):
        received = await _attach_and_close(host, int(port), session_id, secret, timeout)
        # Connect response: length, protocol version, timeout, session id (0: no such session).
        if len(received) >= 20 and struct.unpack_from("!q", received, 12)[0] == 0:
            return True
        if len(received) < 4:
            continue
        # Then the close reply: length, xid, zxid, error code (0: closed).
        second = struct.unpack_from("!i", received)[0] + 4
        if len(received) >= second + 20 and struct.unpack_from("!i", received, second + 16)[0] == 0:
            return True
    return False


class ZooKeeperServer:
    """A standalone ZooKeeper on a free loopback port.

    ``tick_time`` is in milliseconds; the server accepts session timeouts from
    2 to 20 ticks (200 ms allows 0.4-4 s sessions).
    """

    def __init__(self, tick_time: int = 200, max_session_ticks: int = 50) -> None:
        java = shutil.which("java")
        missing = [jar for jar in ZK_JARS if not Path(jar).exists()]
        if java is None or missing:
            raise MissingServer("ZooKeeper (java and zookeeper.jar) not found: apt-get install zookeeper")
        self.java = java
        self.tick_time = tick_time
        self.max_session_ticks = max_session_ticks
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="sg-zk-"))
        self.datadir = self.tmp / "data"
        self.datadir.mkdir()
        self.proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    def _write_config(self) -> None:
        (self.tmp / "zoo.cfg").write_text(
            "\n".join(
                [
                    f"tickTime={self.tick_time}",
                    f"dataDir={self.datadir}",
                    f"clientPort={self.port}",
                    "clientPortAddress=127.0.0.1",
                    "admin.enableServer=false",
                    "4lw.commands.whitelist=srvr,ruok,stat,cons,dump",
                    f"maxSessionTimeout={self.tick_time * self.max_session_ticks}",
                    "maxClientCnxns=0",
                    "forceSync=no",
                    "",
                ]
            )
        )
        # slf4j-simple: warnings only, so a long run does not fill the log.
        (self.tmp / "simplelogger.properties").write_text("org.slf4j.simpleLogger.defaultLogLevel=warn\n")

    @property
    def hosts(self) -> str:
        """``127.0.0.1:PORT``, as a driver URL's netloc."""
        return f"127.0.0.1:{self.port}"

    @property
    def min_session_timeout(self) -> float:
        """Shortest session the server grants, in seconds."""
        return 2 * self.tick_time / 1000

    def url(self, chroot: str = "", **options: object) -> str:
        """A ``zookeeper://`` driver URL for this server."""
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"zookeeper://{self.hosts}/{chroot.strip('/')}" + (f"?{query}" if query else "")

    def serving(self) -> bool:
        """True when the server answers ``srvr`` with its mode."""
        return "Mode:" in four_letter_word(self.port, "srvr")

    def start(self, timeout: float = 60.0) -> ZooKeeperServer:
        """Start java and wait until it serves."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.spawn()
        self.wait_serving(timeout)
        return self

    def spawn(self) -> None:
        """Start java without waiting: a quorum member serves only once a quorum of its
        peers runs too, so an ensemble spawns every member before waiting on any."""
        classpath = ":".join([str(self.tmp), *ZK_JARS])
        log = (self.tmp / "zookeeper.log").open("ab")
        try:
            self.proc = subprocess.Popen(
                [
                    self.java,
                    "-Xmx128m",
                    "-XX:+UseSerialGC",
                    "-XX:TieredStopAtLevel=1",
                    "-Dzookeeper.jmx.log4j.disable=true",
                    "-cp",
                    classpath,
                    "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                    str(self.tmp / "zoo.cfg"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.tmp,
            )
        finally:
            log.close()

    def wait_serving(self, timeout: float = 60.0) -> None:
        """Wait until the started server serves; raise with its log tail if java exits."""
        proc = self.proc
        if proc is None:
            raise RuntimeError(f"ZooKeeper on port {self.port} was not started")

        def ready() -> bool:
            if proc.poll() is not None:
                tail = (self.tmp / "zookeeper.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"ZooKeeper exited with {proc.returncode}:\n{tail}")
            return self.serving()

        wait_until(ready, timeout, f"ZooKeeper serving on port {self.port}", interval=0.05)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL), keeping its data for a restart."""
        if self.proc is not None:
            stop_pid(self.proc, timeout=10)
            self.proc = None

    def kill(self) -> None:
        """SIGKILL the server at once (a crash), keeping its data."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def restart(self, timeout: float = 60.0) -> ZooKeeperServer:
        """Stop and start again on the same port with the same data."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop and remove the data directory."""
        self.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        return None if self.proc is None else self.proc.pid

    def __enter__(self) -> ZooKeeperServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":  # pragma: no cover - a manual smoke check
    with ZooKeeperServer() as zk:
        print(zk.hosts, four_letter_word(zk.port, "srvr"), os.getpid())
