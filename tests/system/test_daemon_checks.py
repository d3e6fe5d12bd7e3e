"""Health-gated beats in the real agent: each check kind against real things; the
service goes down within one beat of its check failing and up within one beat of it
passing, while the agent's other services stay up."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sg import ServiceGroup
from sg.model import ServiceStatus
from tests.support.daemon_harness import AgentProcess, agent_config
from tests.support.processes import sgctl
from tests.support.servers import HttpServer, listener
from tests.support.systemctl import StandInSystemctl
from tests.support.waiting import eventually

INTERVAL = 0.5
CHECK_TIMEOUT = 0.25
#: One beat: the next round starts within INTERVAL, its check takes at most
#: CHECK_TIMEOUT, plus the store write and slack for a loaded machine.
ONE_BEAT = INTERVAL + CHECK_TIMEOUT + 0.75


class Things:
    """The real things the checks watch, each breakable and fixable."""

    def __init__(self, tmp_path: Path) -> None:
        self.sock = listener()
        self.port = self.sock.getsockname()[1]
        self.http = HttpServer()
        self.pidfile = tmp_path / "svc.pid"
        self.proc = self._spawn()
        self.flag = tmp_path / "ok.flag"
        self.flag.touch()

    def _spawn(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(["sleep", "300"])
        self.pidfile.write_text(f"{proc.pid}\n")
        return proc

    def checks(self) -> dict[str, str]:
        return {
            "sg-tcp": f"tcp:127.0.0.1:{self.port}",
            "sg-http": f"http:http://127.0.0.1:{self.http.port}/health",
            "sg-pidfile": f"pidfile:{self.pidfile}",
            "sg-exec": f"exec:test -e {self.flag}",
        }

    def cases(self) -> list[tuple[str, Callable[[], None], Callable[[], None]]]:
        def tcp_break() -> None:
            self.sock.close()

        def tcp_fix() -> None:
            self.sock = listener(self.port)

        def http_break() -> None:
            self.http.status = 503

        def http_fix() -> None:
            self.http.status = 200

        def pid_break() -> None:
            self.proc.kill()
            self.proc.wait(5)

        def pid_fix() -> None:
            self.proc = self._spawn()

        return [
            ("sg-tcp", tcp_break, tcp_fix),
            ("sg-http", http_break, http_fix),
            ("sg-pidfile", pid_break, pid_fix),
            ("sg-exec", self.flag.unlink, self.flag.touch),
        ]

    def close(self) -> None:
        self.sock.close()
        self.http.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


async def test_each_check_kind_gates_only_its_own_service(tmp_path: Path, store_url: str) -> None:
    things = Things(tmp_path)
    # Accepts connections and never answers: this service's check always times out.
    hung = listener()
    services = [
        {"host": "h1", "binary": "sg-plain", "topic": "checks"},
        {
            "host": "h1",
            "binary": "sg-hung",
            "topic": "checks",
            "check": f"http:http://127.0.0.1:{hung.getsockname()[1]}/",
            "check_timeout": CHECK_TIMEOUT,
        },
    ]
    services += [
        {"host": "h1", "binary": name, "topic": "checks", "check": text, "check_timeout": CHECK_TIMEOUT}
        for name, text in things.checks().items()
    ]
    config = agent_config(
        tmp_path / "sg.toml", store_url, services, report_interval=INTERVAL, service_down_time=2.0
    )
    agent = AgentProcess(config, tmp_path / "agent.log", None)
    try:
        async with ServiceGroup.from_urls(
            store_url, report_interval=INTERVAL, service_down_time=2.0
        ) as group:

            async def states() -> dict[str, ServiceStatus]:
                return {s.service.binary: s for s in await group.list(topic="checks")}

            def all_up(st: dict[str, ServiceStatus]) -> bool:
                """Every service but sg-hung is up (and sg-hung is held down by its check)."""
                return (
                    len(st) == len(services)
                    and all(s.is_up for n, s in st.items() if n != "sg-hung")
                    # A new record reads never_reported until the held-down failure is stored.
                    and st["sg-hung"].verdict.reason == "check_failed"
                )

            st, _ = await eventually(states, all_up, 15, "every service up but sg-hung")
            # The hung check is bounded by its timeout and holds only its own service.
            assert st["sg-hung"].verdict.reason == "check_failed"
            assert st["sg-hung"].service.check_failure == (
                f"http:http://127.0.0.1:{hung.getsockname()[1]}/: no answer within {CHECK_TIMEOUT:g}s"
            )
            timings: dict[str, tuple[float, float]] = {}
            for name, breaker, fixer in things.cases():
                kind = things.checks()[name].split(":", 1)[0]
                breaker()
                st, down_after = await eventually(
                    states,
                    lambda st, n=name: not st[n].is_up,
                    ONE_BEAT,
                    f"{name} down after its check failed",
                )
                assert st[name].verdict.state == "down"
                assert st[name].verdict.reason == "check_failed"
                failure = st[name].service.check_failure
                assert failure is not None
                assert failure.startswith(kind + ":")
                assert st[name].verdict.detail == failure
                others = {
                    n: s.verdict.reason for n, s in st.items() if n not in (name, "sg-hung") and not s.is_up
                }
                assert others == {}, f"other services went down with {name}: {others}"
                if name == "sg-tcp":
                    shown = sgctl("service", "show", "h1", "sg-tcp", config=config)
                    assert shown.returncode == 0, shown.stderr
                    line = next(li for li in shown.stdout.splitlines() if li.startswith("check_failure"))
                    assert line.split(None, 1)[1] == f"tcp:127.0.0.1:{things.port}: Connection refused"

                fixer()
                st, up_after = await eventually(
                    states, lambda st, n=name: st[n].is_up, ONE_BEAT, f"{name} up after its check passed"
                )
                assert st[name].service.check_failure is None
                assert all_up(st)
                timings[name] = (round(down_after, 2), round(up_after, 2))
            # Shown with -s or on failure: seconds from break to down and from fix to up.
            print(f"check transitions (down_s, up_s): {timings}")
        agent.signal(signal.SIGTERM)
        assert await agent.wait_exit(5) == 0
        failed = {e["binary"] for e in agent.events("check_failed")}
        assert failed == {"sg-tcp", "sg-http", "sg-pidfile", "sg-exec", "sg-hung"}
        assert {e["binary"] for e in agent.events("check_passed")} == failed - {"sg-hung"}
    finally:
        agent.kill()
        things.close()
        hung.close()


def _systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemd-run") is not None


@pytest.mark.skipif(
    not _systemd_running(),
    reason="systemd is not PID 1 on this machine: no unit can be started to gate on",
)
async def test_systemd_check_follows_a_transient_unit(tmp_path: Path) -> None:
    unit = f"sg-test-{time.monotonic_ns()}.service"
    store = f"sqlite://{tmp_path}/s.db"
    started = subprocess.run(["systemd-run", "--unit", unit, "sleep", "300"], capture_output=True, timeout=30)
    assert started.returncode == 0, started.stderr
    config = agent_config(
        tmp_path / "sg.toml",
        store,
        [
            {"host": "h1", "binary": "sg-plain", "topic": "sd"},
            {"host": "h1", "binary": "sg-unit", "topic": "sd", "check": f"systemd:{unit}"},
        ],
        report_interval=INTERVAL,
        service_down_time=2.0,
    )
    agent = AgentProcess(config, tmp_path / "agent.log", None)
    try:
        async with ServiceGroup.from_urls(store, report_interval=INTERVAL, service_down_time=2.0) as group:

            async def states() -> dict[str, ServiceStatus]:
                return {s.service.binary: s for s in await group.list(topic="sd")}

            await eventually(states, lambda st: len(st) == 2 and all(s.is_up for s in st.values()), 15, "up")
            subprocess.run(["systemctl", "stop", unit], check=True, timeout=30)
            st, _ = await eventually(states, lambda st: not st["sg-unit"].is_up, ONE_BEAT + 1, "unit down")
            assert st["sg-unit"].verdict.reason == "check_failed"
            assert st["sg-plain"].is_up
    finally:
        agent.kill()
        subprocess.run(["systemctl", "stop", unit], capture_output=True, timeout=30)


async def test_systemd_check_follows_a_stand_in_systemctl(
    tmp_path: Path, stand_in_systemctl: StandInSystemctl
) -> None:
    """The agent's systemd: gate end to end, against a stand-in systemctl on PATH
    (systemd is not PID 1 on this machine kind, so no real unit can be active)."""
    unit = "sg-standin.service"
    stand_in_systemctl.set_state(unit, "active")
    store = f"sqlite://{tmp_path}/s.db"
    config = agent_config(
        tmp_path / "sg.toml",
        store,
        [
            {"host": "h1", "binary": "sg-plain", "topic": "sd"},
            {"host": "h1", "binary": "sg-unit", "topic": "sd", "check": f"systemd:{unit}"},
        ],
        report_interval=INTERVAL,
        service_down_time=2.0,
    )
    agent = AgentProcess(config, tmp_path / "agent.log", None)
    try:
        async with ServiceGroup.from_urls(store, report_interval=INTERVAL, service_down_time=2.0) as group:

            async def states() -> dict[str, ServiceStatus]:
                return {s.service.binary: s for s in await group.list(topic="sd")}

            await eventually(states, lambda st: len(st) == 2 and all(s.is_up for s in st.values()), 15, "up")
            stand_in_systemctl.set_state(unit, "failed")
            st, _ = await eventually(states, lambda st: not st["sg-unit"].is_up, ONE_BEAT + 1, "unit down")
            assert st["sg-unit"].verdict.reason == "check_failed"
            assert st["sg-unit"].verdict.detail == f"systemd:{unit}: not active (failed)"
            assert st["sg-plain"].is_up
            stand_in_systemctl.set_state(unit, "active")
            await eventually(states, lambda st: st["sg-unit"].is_up, ONE_BEAT + 1, "unit up again")
        assert f"is-active -- {unit}" in stand_in_systemctl.calls()
    finally:
        agent.kill()
