"""http: checks with non-Latin-1 URLs (issue 10, defect 8) and pidfile: checks that
cannot block the event loop (defect 9), against real things started by the test."""

from __future__ import annotations

import os
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
    """A FIFO with no writer blocks open() forever; the loop must keep running."""
    fifo = tmp_path / "svc.pid"
    os.mkfifo(fifo)
    c = check(f"pidfile:{fifo}", timeout=0.5)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    started = time.monotonic()
    with anyio.fail_after(10):  # on main the whole loop hangs here
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            reason = await c()
            tg.cancel_scope.cancel()
    took = time.monotonic() - started
    assert reason is not None
    assert reason.startswith(f"pidfile:{fifo}: ")
    assert took < 0.5 + 1.0, took  # the check's timeout, plus room for a loaded machine
    assert ticks > 0


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
