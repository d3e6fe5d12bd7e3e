"""The agent's cost on a host: RSS and CPU over one minute with ten services at a 1 s
interval, read from /proc/PID of the real ``sg-agent``.

Peers in the same run, measured the same way and at the same time: the agent with
one service, the agent with ten services each gated by a tcp: check, and an idle
Python interpreter (``time.sleep``), the floor any Python daemon pays. Each agent
runs on its own SQLite file with the db driver (the embedded default).

``python -m bench.bench_agent`` (``SG_BENCH_SECONDS`` changes the minute).
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

SECONDS = float(os.environ.get("SG_BENCH_SECONDS", "60"))
WARMUP = 5.0
SAMPLE_EVERY = 1.0
TICK = os.sysconf("SC_CLK_TCK")
BIN = Path(sys.executable).parent


@dataclass
class Subject:
    """One measured process."""

    name: str
    proc: subprocess.Popen[bytes]
    db: Path | None = None
    cpu_start: float = 0.0
    cpu_end: float = 0.0
    rss_kib: list[int] = field(default_factory=list)
    beats_start: int = 0
    beats_end: int = 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` from /proc/PID/stat, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # After the command: state is field 0, utime 11, stime 12.
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def beats(db: Path | None) -> int:
    if db is None or not db.exists():
        return 0
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT COALESCE(SUM(report_count), 0) FROM services").fetchone()[0])
    finally:
        conn.close()


def config(directory: Path, name: str, services: int, check: str | None) -> Path:
    lines = [
        f'store = "sqlite://{directory}/{name}.db"',
        'driver = "db://"',
        "report_interval = 1.0",
        "service_down_time = 5.0",
    ]
    for i in range(services):
        lines += ["[[service]]", f'binary = "sg-bench-{i}"', 'topic = "bench"']
        if check:
            lines.append(f'check = "{check}"')
    path = directory / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_agent(directory: Path, name: str, services: int, check: str | None = None) -> Subject:
    path = config(directory, name, services, check)
    log = (directory / f"{name}.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SG_", "NOTIFY_", "WATCHDOG_"))}
    proc = subprocess.Popen(
        [str(BIN / "sg-agent"), "--config", str(path), "--log-json"], stdout=log, stderr=log, env=env
    )
    return Subject(name, proc, directory / f"{name}.db")


def main() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]

    def accept() -> None:
        # Accept and close, or the backlog fills and the checks (rightly) time out.
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    with tempfile.TemporaryDirectory(prefix="sg-bench-agent-") as tmp:
        directory = Path(tmp)
        subjects = [
            start_agent(directory, "agent-10", 10),
            start_agent(directory, "agent-1", 1),
            start_agent(directory, "agent-10-tcp-check", 10, f"tcp:127.0.0.1:{port}"),
            Subject("idle-python", subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])),
        ]
        try:
            time.sleep(WARMUP)
            for s in subjects:
                assert s.proc.poll() is None, f"{s.name} exited early"
                s.cpu_start = cpu_seconds(s.proc.pid)
                s.beats_start = beats(s.db)
            began = time.monotonic()
            while (elapsed := time.monotonic() - began) < SECONDS:
                for s in subjects:
                    s.rss_kib.append(rss_kib(s.proc.pid))
                time.sleep(min(SAMPLE_EVERY, max(0.0, SECONDS - elapsed)))
            for s in subjects:
                s.cpu_end = cpu_seconds(s.proc.pid)
                s.beats_end = beats(s.db)
            elapsed = time.monotonic() - began
        finally:
            for s in subjects:
                if s.proc.poll() is None:
                    s.proc.send_signal(signal.SIGTERM)
            for s in subjects:
                try:
                    s.proc.wait(10)
                except subprocess.TimeoutExpired:
                    s.proc.kill()
                    s.proc.wait(10)
            listener.close()
    print(f"{elapsed:.0f} s after a {WARMUP:g} s warm-up; 1 s report interval; SQLite + db driver")
    print(f"{'process':22} {'CPU s':>7} {'CPU %':>6} {'RSS max MiB':>12} {'RSS end MiB':>12} {'beats/s':>8}")
    for s in subjects:
        cpu = s.cpu_end - s.cpu_start
        rate = (s.beats_end - s.beats_start) / elapsed
        print(
            f"{s.name:22} {cpu:7.2f} {100 * cpu / elapsed:6.2f} {max(s.rss_kib) / 1024:12.1f} "
            f"{s.rss_kib[-1] / 1024:12.1f} {rate:8.2f}"
        )


if __name__ == "__main__":
    main()
