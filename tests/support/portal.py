"""A blocking portal: an event loop in a thread, so synchronous hypothesis tests can
run many examples against one set of open backends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from anyio.from_thread import BlockingPortal, start_blocking_portal


@contextmanager
def portal() -> Iterator[BlockingPortal]:
    """An asyncio event loop in a worker thread, for the length of the block."""
    with start_blocking_portal("asyncio") as p:
        yield p
