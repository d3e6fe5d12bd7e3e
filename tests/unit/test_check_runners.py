"""Each check kind against real things started by the test, in process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.checks import Check
from agent.checks.grammar import parse_check
from sg.testing import free_port
from tests.support.servers import HttpServer, listener
from tests.support.systemctl import StandInSystemctl
from tests.support.waiting import eventually


def check(text: str, timeout: float = 2.0) -> Check:
    return Check(parse_check(text), timeout)


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    server = HttpServer()
    yield server
    server.close()


async def test_tcp_check_follows_a_listener() -> None:
    sock = listener()
    port = sock.getsockname()[1]
    c = check(f"tcp:127.0.0.1:{port}")
    assert await c() is None
    sock.close()
    assert await c() == f"tcp:127.0.0.1:{port}: Connection refused"
    sock = listener(port)
    try:
        assert await c() is None
    finally:
        sock.close()


async def test_http_check_wants_2xx(http_server: HttpServer) -> None:
    url = f"http://127.0.0.1:{http_server.port}/healthz"
    c = check(f"http:{url}")
    assert await c() is None
    http_server.status = 503
    assert await c() == f"http:{url}: HTTP status 503 Service Unavailable"
    http_server.status = 204
    assert await c() is None
    http_server.close()
    assert await c() == f"http:{url}: Connection refused"


async def test_http_check_sends_basic_auth_and_never_shows_the_password(http_server: HttpServer) -> None:
    import base64

    http_server.authorization = "Basic " + base64.b64encode(b"probe:s3cret").decode()
    good = check(f"http:http://probe:s3cret@127.0.0.1:{http_server.port}/")
    assert await good() is None
    bad = check(f"http:http://probe:wrong-s3cret@127.0.0.1:{http_server.port}/")
    reason = await bad()
    assert reason == f"http:http://probe:***@127.0.0.1:{http_server.port}/: HTTP status 401 Unauthorized"
    assert "s3cret" not in bad.spec.text


async def test_http_check_times_out_on_a_server_that_never_answers() -> None:
    # Accepts (the kernel completes the handshake into the backlog) but never replies.
    sock = listener()
    try:
        c = check(f"http://127.0.0.1:{sock.getsockname()[1]}/", timeout=0.3)
        assert await c() == f"http:http://127.0.0.1:{sock.getsockname()[1]}/: no answer within 0.3s"
    finally:
        sock.close()


async def test_pidfile_check_follows_a_real_process(tmp_path: Path) -> None:
    pidfile = tmp_path / "svc.pid"
    c = check(f"pidfile:{pidfile}")
    assert await c() == f"pidfile:{pidfile}: pid file does not exist"
    proc = subprocess.Popen(["sleep", "300"])
    try:
        pidfile.write_text(f"{proc.pid}\n")
        assert await c() is None
        proc.kill()
        # Not yet reaped: a zombie is not a live service.
        reason, _ = await eventually(c, lambda r: r is not None, 5, "the killed process reads dead")
        assert reason == f"pidfile:{pidfile}: process {proc.pid} has exited (zombie)"
        proc.wait(5)
        assert await c() == f"pidfile:{pidfile}: process {proc.pid} is not running"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    pidfile.write_text("garbage")
    assert await c() == f"pidfile:{pidfile}: no pid in the file (read 'garbage')"


async def test_exec_check_exit_status_output_and_timeout(tmp_path: Path) -> None:
    assert await check("exec:true")() is None
    assert await check("exec:sh -c 'echo disk full >&2; exit 2'")() == (
        "exec:sh -c 'echo disk full >&2; exit 2': exit status 2: disk full"
    )
    assert (
        await check("exec:/nonexistent/probe")()
        == "exec:/nonexistent/probe: command not found: /nonexistent/probe"
    )

    # A command that outlives its timeout is killed, with what it started.
    pidfile = tmp_path / "child.pid"
    slow = check(f"exec:sh -c 'sleep 300 & echo $! > {pidfile}; wait'", timeout=0.5)
    reason = await slow()
    assert reason is not None
    assert reason.endswith("no answer within 0.5s")
    child = int(pidfile.read_text())

    async def alive() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return False
        state = Path(f"/proc/{child}/stat").read_text().rpartition(")")[2].split()[0]
        return state != "Z"

    await eventually(alive, lambda up: not up, 5, "the timed-out check's child is killed")


def _systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


@pytest.mark.skipif(not _systemd_running(), reason="systemd is not PID 1 here: no unit can be active")
async def test_systemd_check_on_a_live_systemd() -> None:
    # Every running systemd has an active init.scope and no unit with this name.
    assert await check("systemd:init.scope")() is None
    reason = await check("systemd:sg-no-such-unit-1234.service")()
    assert reason is not None
    assert "not active" in reason


async def test_systemd_check_fails_closed_without_systemd(stand_in_systemctl: StandInSystemctl) -> None:
    """No running systemd: the unit reads inactive, the check fails (stand-in systemctl;
    the real one says the same where systemd is not PID 1)."""
    reason = await check("systemd:ssh.service")()
    assert reason == "systemd:ssh.service: not active (inactive)"


async def test_systemd_check_passes_while_the_unit_is_active(stand_in_systemctl: StandInSystemctl) -> None:
    """The passing path, with a stand-in systemctl on PATH: systemd is not PID 1 on this
    machine kind, so no real unit can be active here."""
    stand_in_systemctl.set_state("sg-web.service", "active")
    assert await check("systemd:sg-web.service")() is None
    stand_in_systemctl.set_state("sg-web.service", "failed")
    assert await check("systemd:sg-web.service")() == "systemd:sg-web.service: not active (failed)"
    stand_in_systemctl.set_state("sg-web.service", "active")
    assert await check("systemd:sg-web.service")() is None
    # The unit is passed after "--", so a unit name can never be read as an option.
    assert stand_in_systemctl.calls() == ["is-active -- sg-web.service"] * 3


async def test_systemd_check_without_systemctl_fails_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no systemctl at all
    reason = await check("systemd:sg-web.service")()
    assert reason == "systemd:sg-web.service: command not found: systemctl"


async def test_a_slow_check_does_not_hold_another() -> None:
    """Checks of two services run in their own tasks: a hung one never delays the other."""
    import anyio

    hung = listener()  # never answers HTTP
    fast = listener()
    try:
        results: dict[str, str | None] = {}

        async def run(name: str, c: Check) -> None:
            results[name] = await c()

        began = anyio.current_time()
        fast_done = 0.0
        async with anyio.create_task_group() as tg:
            tg.start_soon(run, "hung", check(f"http://127.0.0.1:{hung.getsockname()[1]}/", timeout=1.0))
            await run("fast", check(f"tcp:127.0.0.1:{fast.getsockname()[1]}"))
            fast_done = anyio.current_time() - began
        assert results["fast"] is None
        assert results["hung"] is not None
        assert fast_done < 1.0
    finally:
        hung.close()
        fast.close()


def test_free_port_helper_is_unused_port() -> None:
    # The agent tests bind checks to free ports; make sure nothing listens there.
    port = free_port()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
