"""Helpers of the interoperability tests: outside tools, and an in-process uvicorn server."""

from __future__ import annotations

import importlib
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import anyio
import pytest
import uvicorn
from starlette.types import ASGIApp

from sg.testing.plugin import in_ci

#: How to get each outside tool on Debian (all installed by `.ci/install-debs` or `make venv`).
INSTALL_HINT = {
    "promtool": "bash .ci/install-debs (Debian package prometheus)",
    "chromium": "bash .ci/install-debs (Debian package chromium)",
    "openstack": "pip install -e '.[interop]'",
    "playwright": "pip install -e '.[interop]'",
}


def _missing(message: str) -> NoReturn:
    if in_ci():
        pytest.fail(f"{message} (CI=true: a missing tool is a failure)")
    # Also at import time, where the interop modules call require_module.
    pytest.skip(message, allow_module_level=True)


def require_module(name: str, tool: str) -> ModuleType:
    """Import ``name``; a failure under CI when it is missing, else a skip."""
    try:
        return importlib.import_module(name)
    except ImportError:
        _missing(f"{name} is not installed: {INSTALL_HINT.get(tool, 'install it')}")


def require_tool(name: str, path: str | None = None) -> str:
    """The path of an outside tool; a failure under CI when it is missing, else a skip."""
    found = path if path is not None and Path(path).exists() else shutil.which(name)
    if found is None:
        _missing(f"{name} is not installed: {INSTALL_HINT.get(name, 'install it')}")
    return found


@asynccontextmanager
async def serve(app: ASGIApp, port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on loopback (a free port unless ``port``) in this event
    loop; yields its base URL. The socket is bound before the server starts, so no race."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        with anyio.fail_after(10):
            while not server.started:
                await anyio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
    sock.close()
