"""Running the local health checks that gate a service's heartbeat.

A :class:`Check` is the heartbeat's gate (:data:`sg.heartbeat.Gate`): it returns
``None`` while the service is healthy and a one-line reason when it is not. Every
run is bounded by the service's ``check_timeout``; a check that does not answer in
time has failed. Checks of different services run in their own heartbeat tasks,
so a slow check never delays another service's beat.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import ssl
import stat
import subprocess
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import anyio
from anyio.abc import ByteReceiveStream, ByteStream, Process

from agent.checks.grammar import CheckSpec, ExecCheck, HttpCheck, PidfileCheck, SystemdCheck, TcpCheck

__all__ = ["Check", "build_check"]

#: Longest part of a failing command's output kept in the reason.
OUTPUT_LIMIT = 200
#: Most bytes of an HTTP response read to find its status line.
HTTP_HEAD_LIMIT = 16384
#: What stays as it is in an http: check's path (RFC 3986 pchar and "/", with "%" so an
#: already encoded URL is not encoded twice); anything else is percent-encoded.
_URL_SAFE = "/%:@!$&'()*+,;=-._~"


class CheckFailed(Exception):
    """A check ran and found the service unhealthy; the message says why."""


class Check:
    """One service's health check, bounded by ``timeout`` seconds per run."""

    def __init__(self, spec: CheckSpec, timeout: float) -> None:
        self.spec = spec
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"Check({self.spec.text!r}, timeout={self.timeout:g})"

    async def __call__(self) -> str | None:
        """Run once: ``None`` if healthy, else ``"KIND:TARGET: why"``."""
        try:
            with anyio.fail_after(self.timeout):
                await _run(self.spec)
        except TimeoutError:
            return f"{self.spec.text}: no answer within {self.timeout:g}s"
        except CheckFailed as exc:
            return f"{self.spec.text}: {exc}"
        except OSError as exc:
            # anyio's connect_tcp says "All connection attempts failed"; the cause says why.
            # asyncio puts the address where strerror was: name the errno instead.
            cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
            why = os.strerror(cause.errno) if cause.errno else str(cause)
            return f"{self.spec.text}: {why}"
        return None


def build_check(spec: CheckSpec | None, timeout: float) -> Check | None:
    """The check for a service's ``check`` setting, or ``None`` when it has none."""
    return None if spec is None else Check(spec, timeout)


def _one_line(data: bytes) -> str:
    lines = [line.strip() for line in data.decode(errors="replace").splitlines() if line.strip()]
    text = lines[-1] if lines else ""
    return text[:OUTPUT_LIMIT]


async def _kill_group(process: Process) -> None:
    # The command ran in its own session: kill it and anything it started.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
        await process.wait()


async def _run_command(argv: tuple[str, ...]) -> tuple[int, bytes]:
    """Run ``argv`` without a shell; return its exit status and its output (merged,
    the first few KiB). Killed with its process group when cancelled or timed out."""
    output = bytearray()

    async def drain(stream: ByteReceiveStream) -> None:
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            while True:
                chunk = await stream.receive()
                if len(output) < 4096:
                    output.extend(chunk)

    try:
        process = await anyio.open_process(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise CheckFailed(f"command not found: {argv[0]}") from exc
    except PermissionError as exc:
        raise CheckFailed(f"cannot execute {argv[0]}: {exc.strerror}") from exc
    try:
        async with anyio.create_task_group() as tg:
            if process.stdout is not None:
                tg.start_soon(drain, process.stdout)
            status = await process.wait()
            # A child that keeps the pipe open must not hold the check.
            tg.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            await _kill_group(process)
        with anyio.CancelScope(shield=True):
            await process.aclose()
    return status, bytes(output)


async def _exec(spec: ExecCheck) -> None:
    status, output = await _run_command(spec.argv)
    if status != 0:
        detail = _one_line(output)
        why = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
        raise CheckFailed(f"{why}: {detail}" if detail else why)


async def _systemd(spec: SystemdCheck) -> None:
    status, output = await _run_command(("systemctl", "is-active", "--", spec.unit))
    if status != 0:
        state = _one_line(output) or f"systemctl exit status {status}"
        raise CheckFailed(f"not active ({state})")


async def _tcp(spec: TcpCheck) -> None:
    stream = await anyio.connect_tcp(spec.host, spec.port)
    await stream.aclose()


async def _http(spec: HttpCheck) -> None:
    parts = urlsplit(spec.url)
    tls = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if tls else 80)
    # The request line and Host header are ASCII: percent-encode the path and query
    # from UTF-8 (keeping what is already encoded) and IDNA-encode a non-ASCII host.
    path = quote(parts.path or "/", safe=_URL_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=_URL_SAFE + "?")
    stream: ByteStream
    if tls:
        # Many servers close TLS without close_notify; the status line is all we need.
        stream = await anyio.connect_tcp(
            host, port, tls=True, ssl_context=ssl.create_default_context(), tls_standard_compatible=False
        )
    else:
        stream = await anyio.connect_tcp(host, port)
    async with stream:
        netloc = parts.netloc.rpartition("@")[2]
        if not netloc.isascii():
            netloc = host.encode("idna").decode("ascii") + (f":{parts.port}" if parts.port else "")
        auth = ""
        if parts.username is not None:
            token = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            auth = f"Authorization: Basic {base64.b64encode(token).decode()}\r\n"
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {netloc}\r\n{auth}User-Agent: sg-agent\r\n"
            "Connection: close\r\n\r\n"
        )
        await stream.send(request.encode("ascii"))
        head = bytearray()
        while b"\r\n" not in head and len(head) < HTTP_HEAD_LIMIT:
            try:
                head.extend(await stream.receive())
            except anyio.EndOfStream:
                break
    status_line = bytes(head).split(b"\r\n", 1)[0].decode("latin-1", errors="replace")
    fields = status_line.split(" ", 2)
    if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
        raise CheckFailed(f"not an HTTP response: {status_line[:OUTPUT_LIMIT]!r}")
    if not 200 <= int(fields[1]) < 300:
        raise CheckFailed(f"HTTP status {status_line[len(fields[0]) + 1 :][:OUTPUT_LIMIT]}")


def _process_state(pid: int) -> str | None:
    """The state letter from ``/proc/PID/stat``, or ``None`` when it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: the state follows ")".
    after = stat.rpartition(")")[2].split()
    return after[0] if after else None


#: Most bytes read of a pid file: a pid is a few digits.
PIDFILE_LIMIT = 4096


def _read_pidfile(path: str) -> str:
    """Read a pid file, in a worker thread. ``O_NONBLOCK`` makes a FIFO open (and read
    empty) at once instead of waiting for a writer; anything but a regular file is
    refused. A hung network file system can still block this thread, never the loop:
    the caller abandons it at the check's timeout."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CheckFailed("pid file is not a regular file")
        return os.read(fd, PIDFILE_LIMIT).decode("utf-8", errors="replace")
    finally:
        os.close(fd)


def _pid_state(pid: int) -> str | None:
    """``os.kill(pid, 0)`` then the process state, in a worker thread (``/proc`` reads)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError as exc:
        raise CheckFailed(f"process {pid} is not running") from exc
    except PermissionError:
        # It exists but belongs to another user: alive.
        return None
    return _process_state(pid)


async def _pidfile(spec: PidfileCheck) -> None:
    # No file I/O on the event loop: a FIFO or a hung NFS file would stop every
    # heartbeat and SIGTERM. abandon_on_cancel lets the check's timeout end the wait.
    try:
        text = await anyio.to_thread.run_sync(_read_pidfile, spec.path, abandon_on_cancel=True)
    except FileNotFoundError as exc:
        raise CheckFailed("pid file does not exist") from exc
    token = text.split()[0] if text.split() else ""
    if not token.isdigit() or int(token) <= 0:
        raise CheckFailed(f"no pid in the file (read {text[:40]!r})")
    pid = int(token)
    if await anyio.to_thread.run_sync(_pid_state, pid, abandon_on_cancel=True) in ("Z", "X"):
        raise CheckFailed(f"process {pid} has exited (zombie)")


async def _run(spec: CheckSpec) -> None:
    """Run one check; return if healthy, raise :class:`CheckFailed` (or ``OSError``) if not."""
    if isinstance(spec, ExecCheck):
        await _exec(spec)
    elif isinstance(spec, SystemdCheck):
        await _systemd(spec)
    elif isinstance(spec, TcpCheck):
        await _tcp(spec)
    elif isinstance(spec, HttpCheck):
        await _http(spec)
    else:
        await _pidfile(spec)
