"""A ZooKeeper quorum on loopback for tests: three (or any odd number of) servers from
Debian's ``zookeeper`` package, each on its own free client, quorum and election port.

Each member is a :class:`~sg.testing.zookeeper.ZooKeeperServer` with a quorum
``zoo.cfg`` (``server.N=127.0.0.1:QUORUM:ELECTION`` lines and a ``myid`` file). A
member serves only while a quorum of its peers runs, and ``srvr`` prints ``Mode:
leader`` or ``Mode: follower`` only then (a member without a quorum answers that it
"is not currently serving requests"), so the leader is whoever says so. Members are
stopped by the pids this code started, and keep their data across a restart.
"""

from __future__ import annotations

import time
from pathlib import Path

from sg.testing.servers import free_port, wait_until
from sg.testing.zookeeper import ZooKeeperServer, four_letter_word

__all__ = ["EnsembleMember", "ZooKeeperEnsemble"]

#: initLimit / syncLimit in ticks. At tickTime=200 a follower that loses its leader
#: without a closed socket notices within 1 s; a kill -9 on loopback closes it at once.
INIT_LIMIT_TICKS = 25
SYNC_LIMIT_TICKS = 5


class EnsembleMember(ZooKeeperServer):
    """One server of a :class:`ZooKeeperEnsemble` (``server.<sid>`` in the quorum)."""

    def __init__(self, sid: int, tick_time: int, max_session_ticks: int) -> None:
        self.sid = sid
        self.quorum_port = free_port()
        self.election_port = free_port()
        self.peers: list[EnsembleMember] = []
        super().__init__(tick_time=tick_time, max_session_ticks=max_session_ticks)

    def _write_config(self) -> None:
        # Called by ZooKeeperServer.__init__ (no peers yet) and again by the ensemble.
        (self.datadir / "myid").write_text(f"{self.sid}\n")
        servers = [f"server.{p.sid}=127.0.0.1:{p.quorum_port}:{p.election_port}" for p in self.peers]
        (self.tmp / "zoo.cfg").write_text(
            "\n".join(
                [
                    f"tickTime={self.tick_time}",
                    f"initLimit={INIT_LIMIT_TICKS}",
                    f"syncLimit={SYNC_LIMIT_TICKS}",
                    f"dataDir={self.datadir}",
                    f"clientPort={self.port}",
                    "clientPortAddress=127.0.0.1",
                    "admin.enableServer=false",
                    "4lw.commands.whitelist=srvr,ruok,stat,cons,dump,mntr",
                    f"maxSessionTimeout={self.tick_time * self.max_session_ticks}",
                    "maxClientCnxns=0",
                    "forceSync=no",
                    # The ensemble is fixed: no dynamic reconfiguration, no standalone fallback.
                    "standaloneEnabled=false",
                    "reconfigEnabled=false",
                    *servers,
                    "",
                ]
            )
        )
        (self.tmp / "simplelogger.properties").write_text("org.slf4j.simpleLogger.defaultLogLevel=warn\n")

    @property
    def running(self) -> bool:
        """True while the java process this code started is alive."""
        return self.proc is not None and self.proc.poll() is None

    def mode(self) -> str | None:
        """``leader`` or ``follower`` while serving, else ``None`` (down, or no quorum)."""
        for line in four_letter_word(self.port, "srvr", timeout=0.5).splitlines():
            if line.startswith("Mode:"):
                return line.partition(":")[2].strip()
        return None


class ZooKeeperEnsemble:
    """``size`` ZooKeeper servers forming one quorum on 127.0.0.1.

    ``tick_time`` is in milliseconds (sessions of 2 to ``max_session_ticks`` ticks).
    Member ids are 1..size. Use as a context manager, or ``start()`` / ``close()``.
    """

    def __init__(self, size: int = 3, *, tick_time: int = 200, max_session_ticks: int = 50) -> None:
        if size < 3 or size % 2 == 0:
            raise ValueError(f"size must be an odd number >= 3, not {size}")
        self.tick_time = tick_time
        self.members: dict[int, EnsembleMember] = {}
        try:
            for sid in range(1, size + 1):
                self.members[sid] = EnsembleMember(sid, tick_time, max_session_ticks)
        except BaseException:
            self.close()
            raise
        peers = list(self.members.values())
        for member in peers:
            member.peers = peers
            member._write_config()

    @property
    def size(self) -> int:
        """How many servers the ensemble has (running or not)."""
        return len(self.members)

    @property
    def quorum(self) -> int:
        """How many servers must run for the ensemble to serve."""
        return self.size // 2 + 1

    @property
    def hosts(self) -> str:
        """Every member's ``127.0.0.1:PORT``, comma-separated (a driver URL's netloc)."""
        return ",".join(m.hosts for m in self.members.values())

    @property
    def min_session_timeout(self) -> float:
        """Shortest session the servers grant, in seconds."""
        return 2 * self.tick_time / 1000

    def url(self, chroot: str = "", **options: object) -> str:
        """A ``zookeeper://`` driver URL naming all members."""
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"zookeeper://{self.hosts}/{chroot.strip('/')}" + (f"?{query}" if query else "")

    def member(self, sid: int) -> EnsembleMember:
        """The member with id ``sid``; ``KeyError`` naming the valid ids otherwise."""
        try:
            return self.members[sid]
        except KeyError:
            raise KeyError(f"no ensemble member {sid}; ids are {sorted(self.members)}") from None

    def modes(self) -> dict[int, str | None]:
        """Each member's ``srvr`` mode right now (``None``: not serving)."""
        return {sid: m.mode() for sid, m in self.members.items()}

    def current_leader(self) -> int | None:
        """The id of the member that says it leads and whose quorum serves, else ``None``."""
        modes = self.modes()
        leaders = [sid for sid, mode in modes.items() if mode == "leader"]
        serving = sum(mode in ("leader", "follower") for mode in modes.values())
        if len(leaders) == 1 and serving >= self.quorum:
            return leaders[0]
        return None

    def wait_serving(self, timeout: float = 60.0) -> int:
        """Wait until one leader and every running member serve; return the leader's id."""
        found: list[int] = []

        def ready() -> bool:
            leader = self.current_leader()
            running = [m for m in self.members.values() if m.running]
            if leader is None or any(m.mode() is None for m in running):
                return False
            found.append(leader)
            return True

        wait_until(ready, timeout, f"ZooKeeper ensemble {self.hosts} serving with a leader", interval=0.05)
        return found[-1]

    def leader(self, timeout: float = 60.0) -> int:
        """The leader's id, waiting (up to ``timeout``) while an election runs."""
        found: list[int] = []

        def elected() -> bool:
            leader = self.current_leader()
            if leader is not None:
                found.append(leader)
            return leader is not None

        wait_until(elected, timeout, f"a ZooKeeper leader in {self.hosts}", interval=0.05)
        return found[-1]

    def start(self, timeout: float = 90.0) -> ZooKeeperEnsemble:
        """Start every member and wait until the quorum serves."""
        try:
            for member in self.members.values():
                if not member.running:
                    member.spawn()
            self.wait_serving(timeout)
        except BaseException:
            self.close()
            raise
        return self

    def start_member(self, sid: int, *, wait: bool = True, timeout: float = 60.0) -> None:
        """Start member ``sid`` again (same ports and data). With ``wait``, return once it
        serves; without, at once (it cannot serve until a quorum runs)."""
        member = self.member(sid)
        if not member.running:
            member.spawn()
        if wait:
            member.wait_serving(timeout)

    def stop_member(self, sid: int) -> None:
        """Stop member ``sid`` (SIGTERM, then SIGKILL), keeping its data."""
        self.member(sid).stop()

    def kill_member(self, sid: int) -> None:
        """SIGKILL member ``sid`` (a crash), keeping its data."""
        self.member(sid).kill()

    def restart_member(self, sid: int, *, timeout: float = 60.0) -> None:
        """Stop member ``sid`` and start it again; return once it serves."""
        self.stop_member(sid)
        self.start_member(sid, timeout=timeout)

    def kill_leader(self, timeout: float = 60.0) -> tuple[int, float]:
        """SIGKILL the current leader; return its id and the monotonic time of the kill."""
        sid = self.leader(timeout)
        self.kill_member(sid)
        return sid, time.monotonic()

    def wait_new_leader(self, old: int, timeout: float = 60.0) -> tuple[int, float]:
        """Wait until a member other than ``old`` leads a serving quorum; return its id
        and the monotonic time it was seen serving."""
        found: list[int] = []

        def elected() -> bool:
            leader = self.current_leader()
            if leader is not None and leader != old:
                found.append(leader)
                return True
            return False

        wait_until(elected, timeout, f"a new ZooKeeper leader (not {old})", interval=0.02)
        return found[-1], time.monotonic()

    def log_tail(self, sid: int, chars: int = 3000) -> str:
        """The end of member ``sid``'s log, for failure messages."""
        path: Path = self.member(sid).tmp / "zookeeper.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def close(self) -> None:
        """Stop every member and remove their data directories."""
        for member in self.members.values():
            member.close()

    def __enter__(self) -> ZooKeeperEnsemble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
