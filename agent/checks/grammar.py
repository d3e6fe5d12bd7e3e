"""Local health checks as written in ``[[service]] check = "KIND:TARGET"``: parsing only.

The agent runs them (:mod:`agent.checks.runners`); here a check string becomes a typed,
validated value at load time, so a typo is a configuration error and never a
service that silently reads ``down``:

- ``systemd:UNIT``: the unit is active (``systemctl is-active``).
- ``tcp:HOST:PORT``: a TCP connection succeeds (``[::1]:PORT`` for IPv6).
- ``http:URL``: ``GET URL`` answers 2xx; ``URL`` is ``http://...`` or ``https://...``,
  and ``check = "http://host/path"`` is accepted as the same thing.
- ``exec:COMMAND``: the command (split like a shell would, but run without one)
  exits 0.
- ``pidfile:PATH``: the process whose pid the file holds is alive.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from urllib.parse import urlsplit

from sg.redact import redact_url

__all__ = [
    "CHECK_KINDS",
    "CheckSpec",
    "ExecCheck",
    "HttpCheck",
    "PidfileCheck",
    "SystemdCheck",
    "TcpCheck",
    "parse_check",
]

CHECK_KINDS = ("systemd", "tcp", "http", "exec", "pidfile")

#: Characters systemd allows in unit names (plus ``\\`` escapes), and a template ``@``.
_UNIT_NAME = re.compile(r"^[A-Za-z0-9:_.\\@-]{1,255}$")


@dataclass(frozen=True, slots=True)
class SystemdCheck:
    """``systemd:UNIT``: passes while the unit is active."""

    unit: str

    @property
    def text(self) -> str:
        """The check as written in the config."""
        return f"systemd:{self.unit}"


@dataclass(frozen=True, slots=True)
class TcpCheck:
    """``tcp:HOST:PORT``: passes while a TCP connection succeeds."""

    host: str
    port: int

    @property
    def text(self) -> str:
        """The check as written in the config."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp:{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class HttpCheck:
    """``http:URL``: passes while ``GET URL`` answers with a 2xx status. A user and
    password in the URL are sent as basic authentication."""

    url: str

    @property
    def text(self) -> str:
        """The check as written in the config, with any password replaced by ``***``
        (this text goes into logs and the stored failure reason)."""
        return f"http:{redact_url(self.url)}"


@dataclass(frozen=True, slots=True)
class ExecCheck:
    """``exec:COMMAND``: passes while the command exits 0."""

    argv: tuple[str, ...]

    @property
    def text(self) -> str:
        """The check as written in the config."""
        return f"exec:{shlex.join(self.argv)}"


@dataclass(frozen=True, slots=True)
class PidfileCheck:
    """``pidfile:PATH``: passes while the process named by the pid file lives."""

    path: str

    @property
    def text(self) -> str:
        """The check as written in the config."""
        return f"pidfile:{self.path}"


CheckSpec = SystemdCheck | TcpCheck | HttpCheck | ExecCheck | PidfileCheck


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"port must be a number from 1 to 65535, got {text!r}")
    return int(text)


def _tcp(target: str) -> TcpCheck:
    host, sep, port = target.rpartition(":")
    if not sep or not host:
        raise ValueError("expected tcp:HOST:PORT")
    if host.startswith("["):
        if not host.endswith("]") or len(host) < 3:
            raise ValueError("an IPv6 host is written [ADDRESS]")
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("write an IPv6 host in brackets: tcp:[::1]:PORT")
    if any(ch.isspace() or ch in "/@?#" for ch in host):
        raise ValueError(f"malformed host {host!r}")
    return TcpCheck(host, _port(port))


def _http(url: str) -> HttpCheck:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"malformed URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected http:http://HOST[:PORT]/PATH (or https://)")
    if port == 0 or any(ch.isspace() for ch in url):
        raise ValueError(f"malformed URL {redact_url(url)!r}")
    return HttpCheck(url)


def parse_check(text: str) -> CheckSpec:
    """Parse ``KIND:TARGET``; raise ``ValueError`` saying what is wrong."""
    if text.startswith(("http://", "https://")):
        return _http(text)
    kind, sep, target = text.partition(":")
    if not sep or kind not in CHECK_KINDS:
        raise ValueError(
            f"unknown check kind {kind!r}; expected one of {', '.join(CHECK_KINDS)} as KIND:TARGET"
        )
    if not target.strip():
        raise ValueError(f"{kind}: check names no target")
    if kind == "systemd":
        if not _UNIT_NAME.match(target):
            raise ValueError(f"malformed unit name {target!r}")
        return SystemdCheck(target)
    if kind == "tcp":
        return _tcp(target)
    if kind == "http":
        return _http(target)
    if kind == "exec":
        try:
            argv = tuple(shlex.split(target))
        except ValueError as exc:
            raise ValueError(f"cannot split command: {exc}") from exc
        if not argv:
            raise ValueError("exec: empty command")
        return ExecCheck(argv)
    if not target.startswith("/"):
        raise ValueError(f"pid file path must be absolute, got {target!r}")
    return PidfileCheck(target)
