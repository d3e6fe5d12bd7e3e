"""Timing helpers shared by the benchmarks: interleaved repeats, medians, rates.

The machine is shared and noisy, so a figure and its peer are always measured in
the same run, interleaved call by call (A, B, A, B, ...), and compared by ratio
of medians: a burst of load from elsewhere then hits both sides alike.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping

AsyncCall = Callable[[], Awaitable[object]]

#: Suffix of the process CPU times :func:`interleaved` records beside the wall times.
#: CPU time of this process (all its threads, so aiosqlite's too) leaves out the
#: servers' work and the waiting, and with them most of what other load on a shared
#: machine does to a call: the steadier measure of what client-side code costs.
CPU = ":cpu"


async def interleaved(
    calls: Mapping[str, AsyncCall], runs: int, *, warmup: int = 1
) -> dict[str, list[float]]:
    """Time each call ``runs`` times, round-robin, after ``warmup`` untimed rounds; wall
    times under each name, process CPU times under ``name + CPU``.

    A full garbage collection runs before every timed call (outside the timing), so
    one side does not pay for the garbage the other left behind.
    """
    for _ in range(warmup):
        for call in calls.values():
            await call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    times.update({f"{name}{CPU}": [] for name in calls})
    for _ in range(runs):
        for name, call in calls.items():
            gc.collect()
            cpu = time.process_time()
            began = time.perf_counter()
            await call()
            times[name].append(time.perf_counter() - began)
            times[f"{name}{CPU}"].append(time.process_time() - cpu)
    return times


async def interleaved_fast(
    calls: Mapping[str, AsyncCall], runs: int, *, warmup: int = 20
) -> dict[str, list[float]]:
    """As :func:`interleaved` for sub-millisecond calls: no collection between calls."""
    for _ in range(warmup):
        for call in calls.values():
            await call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    times.update({f"{name}{CPU}": [] for name in calls})
    for _ in range(runs):
        for name, call in calls.items():
            cpu = time.process_time()
            began = time.perf_counter()
            await call()
            times[name].append(time.perf_counter() - began)
            times[f"{name}{CPU}"].append(time.process_time() - cpu)
    return times


def median(values: list[float]) -> float:
    """The median (the figure every ratio in the report is made of)."""
    return statistics.median(values)


def ms(seconds: float) -> str:
    """Seconds as milliseconds text."""
    return f"{seconds * 1000:.1f} ms"
