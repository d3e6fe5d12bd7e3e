"""Small timing helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable


async def best_and_median(fn: Callable[[], Awaitable[object]], runs: int) -> tuple[float, float]:
    """Run ``fn`` ``runs`` times; return (best, median) seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def ms(seconds: float) -> str:
    """Seconds as milliseconds text."""
    return f"{seconds * 1000:.1f} ms"
