"""http: checks with non-Latin-1 URLs (issue 10, defect 8) and pidfile: checks that
cannot block the event loop (defect 9), against real things started by the test."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from agent.checks import Check
from agent.checks.grammar import parse_check
from tests.support.servers import HttpServer


def check(text: str, timeout: float = 2.0) -> Check:
    return Check(parse_check(text), timeout)


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    server = HttpServer()
    yield server
    server.close()


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("/santé?état=prêt", "/sant%C3%A9?%C3%A9tat=pr%C3%AAt"),
        ("/健康/检查?q=是", "/%E5%81%A5%E5%BA%B7/%E6%A3%80%E6%9F%A5?q=%E6%98%AF"),
        ("/already%20encoded?a=b%2Fc", "/already%20encoded?a=b%2Fc"),
    ],
)
async def test_http_check_encodes_non_latin1_paths_and_queries(
    http_server: HttpServer, path: str, sent: str
) -> None:
    c = check(f"http:http://127.0.0.1:{http_server.port}{path}")
    assert await c() is None
    assert http_server.paths == [sent]


async def test_pidfile_check_on_a_fifo_fails_within_its_timeout_and_the_loop_runs(tmp_path: Path) -> None:
    """A FIFO with no writer blocks open() forever: on the event loop (as on main) it
    stopped every heartbeat and SIGTERM; now it is refused within the check's timeout."""
    fifo = tmp_path / "svc.pid"
    os.mkfifo(fifo)
    c = check(f"pidfile:{fifo}", timeout=0.5)

    def unblock() -> None:
        # A blocking read on the loop (as on main) would hang the test forever: a
        # writer after 3 s releases it, so the test fails on the time taken instead.
        with contextlib.suppress(OSError), open(fifo, "w"):
            pass

    valve = threading.Timer(3.0, unblock)
    valve.daemon = True
    valve.start()
    started = time.monotonic()
    reason = await c()
    took = time.monotonic() - started
    assert reason is not None
    assert reason.startswith(f"pidfile:{fifo}: ")
    assert took < 0.5 + 1.0, took  # the check's timeout, plus room for a loaded machine
    valve.cancel()


async def test_pidfile_check_runs_again_after_a_fifo(tmp_path: Path) -> None:
    """Round after round on a FIFO must not exhaust the worker threads."""
    fifo = tmp_path / "svc.pid"
    os.mkfifo(fifo)
    c = check(f"pidfile:{fifo}", timeout=0.2)
    for _ in range(50):
        assert await c() is not None
    good = tmp_path / "good.pid"
    good.write_text(f"{os.getpid()}\n")
    with anyio.fail_after(5):
        assert await check(f"pidfile:{good}")() is None
