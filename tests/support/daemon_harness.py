"""Running the real ``sg-agent`` as systemd would: a fake ``$NOTIFY_SOCKET``, JSON logs,
signals; plus a TCP proxy that can make a real PostgreSQL hang."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.support.processes import clean_env, script
from tests.support.waiting import eventually


class NotifySocket:
    """A unix datagram socket standing in for systemd's: records every message."""

    def __init__(self) -> None:
        # sun_path is limited to 108 bytes: a short directory, not pytest's tmp_path.
        self.dir = tempfile.mkdtemp(prefix="sgn-", dir="/tmp")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        #: (monotonic arrival time, fields) per datagram.
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append((time.monotonic(), fields))

    def with_key(self, key: str, since: float = 0.0) -> list[tuple[float, dict[str, str]]]:
        """Messages carrying ``key`` that arrived after ``since`` (monotonic)."""
        return [(t, m) for t, m in list(self.messages) if key in m and t > since]

    async def wait_for(self, key: str, since: float = 0.0, timeout: float = 10.0, count: int = 1) -> float:
        """Wait until ``count`` messages with ``key`` arrived after ``since``; return the
        arrival time of the last one counted."""

        async def probe() -> list[tuple[float, dict[str, str]]]:
            return self.with_key(key, since)

        found, _ = await eventually(
            probe, lambda ms: len(ms) >= count, timeout, f"{count} x {key} on notify socket"
        )
        return found[count - 1][0]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def toml_value(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def agent_config(
    path: Path,
    store: str,
    services: Iterable[dict[str, Any]],
    **settings: object,
) -> Path:
    """Write an agent config: top-level ``settings`` then one table per service."""
    lines = [f"store = {toml_value(store)}"]
    lines += [f"{key} = {toml_value(value)}" for key, value in settings.items()]
    for service in services:
        lines.append("\n[[service]]")
        lines += [f"{key} = {toml_value(value)}" for key, value in service.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


class AgentProcess:
    """``sg-agent --config FILE --log-json`` as a child process, as systemd runs it."""

    def __init__(self, config: Path, log: Path, notify: NotifySocket | None, watchdog_usec: int = 0) -> None:
        env = clean_env()
        if notify is not None:
            env["NOTIFY_SOCKET"] = notify.path
        if watchdog_usec:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [script("sg-agent"), "--config", str(config), "--log-json"], stdout=out, stderr=out, env=env
            )

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The agent's JSON log lines so far (``name``: only that event)."""
        out = []
        for line in self.log.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if name is None or event.get("event") == name:
                out.append(event)
        return out

    async def wait_for_event(self, name: str, count: int = 1, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until the agent logged ``name`` ``count`` times; return the last one."""

        async def probe() -> list[dict[str, Any]]:
            return self.events(name)

        found, _ = await eventually(probe, lambda es: len(es) >= count, timeout, f"agent log event {name}")
        return found[count - 1]

    def signal(self, signum: signal.Signals) -> None:
        self.proc.send_signal(signum)

    async def wait_exit(self, timeout: float) -> int:
        async def probe() -> int | None:
            return self.proc.poll()

        code, _ = await eventually(probe, lambda rc: rc is not None, timeout, "sg-agent exits", interval=0.01)
        assert code is not None
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


class TcpProxy:
    """A loopback TCP proxy to ``upstream_port`` that can *hang*: in hang mode it accepts
    connections and never answers, and stops forwarding on the open ones (without
    closing them), like a server that froze. ``forward()`` drops the frozen ones."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.hanging = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter, list[asyncio.Task[None]]]] = []
        self._frozen: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.hang()
        self._drop_frozen()
        assert self._server is not None
        self._server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.hanging:
            self._frozen.append(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        tasks = [
            asyncio.ensure_future(self._pipe(reader, up_writer)),
            asyncio.ensure_future(self._pipe(up_reader, writer)),
        ]
        self._pipes.append((writer, up_writer, tasks))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()

    def hang(self) -> None:
        """Freeze: no answers on open connections, new ones accepted and ignored."""
        self.hanging = True
        for client, upstream, tasks in self._pipes:
            for task in tasks:
                task.cancel()
            self._frozen += [client, upstream]
        self._pipes.clear()

    def _drop_frozen(self) -> None:
        for writer in self._frozen:
            writer.transport.abort()
        self._frozen.clear()

    def forward(self) -> None:
        """Recover: frozen connections are reset, new ones are forwarded."""
        self.hanging = False
        self._drop_frozen()
