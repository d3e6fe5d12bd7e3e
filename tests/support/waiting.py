"""Waiting for conditions under deadlines (never sleeping to synchronise)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    timeout: float,
    what: str,
    interval: float = 0.02,
) -> tuple[T, float]:
    """Call ``probe`` until ``accept(result)``; return the result and the seconds it took.

    Raises ``AssertionError`` naming ``what`` and the last result on timeout.
    """
    start = time.monotonic()
    deadline = start + timeout
    while True:
        result = await probe()
        if accept(result):
            return result, time.monotonic() - start
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s; last result {result!r}")
        await anyio.sleep(interval)
