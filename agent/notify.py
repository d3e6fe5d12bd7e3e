"""sd_notify: tell systemd about the agent's state (``Type=notify``, the watchdog).

The protocol is one datagram of ``KEY=VALUE`` lines to the unix socket named by
``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace). Without that
variable (not started by systemd) every call does nothing. Sending never blocks
and never raises: a lost notification must not stop the agent, so failures are
logged once.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

import structlog

__all__ = ["Notifier"]

log = structlog.get_logger("agent.notify")


class Notifier:
    """Sends sd_notify messages to one socket."""

    def __init__(self, address: str | None, *, watchdog_usec: int | None = None) -> None:
        self.address = address
        #: The watchdog interval systemd expects pings within, in seconds, or ``None``.
        self.watchdog_interval = None if not watchdog_usec else watchdog_usec / 1_000_000
        self._sock: socket.socket | None = None
        self._warned = False

    @classmethod
    def take_from_environ(cls) -> Notifier:
        """:meth:`from_env` on ``os.environ``, then remove the variables, so that the
        commands of ``exec:`` checks never talk to systemd as if they were the agent."""
        notifier = cls.from_env(os.environ)
        for var in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            os.environ.pop(var, None)
        return notifier

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        """Read ``$NOTIFY_SOCKET`` and ``$WATCHDOG_USEC`` (honouring ``$WATCHDOG_PID``)."""
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET") or None
        usec: int | None = None
        pid = env.get("WATCHDOG_PID")
        if pid is None or pid == str(os.getpid()):
            try:
                usec = int(env.get("WATCHDOG_USEC", "0")) or None
            except ValueError:
                log.warning("bad_watchdog_usec", value=env.get("WATCHDOG_USEC"))
        return cls(address, watchdog_usec=usec)

    @property
    def enabled(self) -> bool:
        """Whether there is a socket to notify."""
        return self.address is not None

    def _target(self) -> str:
        assert self.address is not None
        # A leading "@" names a socket in the abstract namespace (a NUL byte on the wire).
        return "\0" + self.address[1:] if self.address.startswith("@") else self.address

    def send(self, **fields: str | int) -> bool:
        """Send one message, e.g. ``send(READY=1, STATUS="...")``; return whether it went."""
        if self.address is None:
            return False
        payload = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.setblocking(False)
                self._sock = sock
            self._sock.sendto(payload, self._target())
        except OSError as exc:
            if not self._warned:
                log.warning("sd_notify_failed", socket=self.address, error=str(exc))
                self._warned = True
            return False
        self._warned = False
        return True

    def ready(self, status: str) -> bool:
        """``READY=1``: start-up (or a reload) is complete."""
        return self.send(READY=1, STATUS=status)

    def reloading(self) -> bool:
        """``RELOADING=1`` with the monotonic time systemd's notify-reload mode wants."""
        return self.send(RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def stopping(self) -> bool:
        """``STOPPING=1``: shutting down."""
        return self.send(STOPPING=1, STATUS="stopping: leaving every service")

    def watchdog(self, status: str) -> bool:
        """``WATCHDOG=1``: the agent completed a good round."""
        return self.send(WATCHDOG=1, STATUS=status)

    def status(self, status: str) -> bool:
        """``STATUS=``: a line for ``systemctl status``."""
        return self.send(STATUS=status)

    def close(self) -> None:
        """Close the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
