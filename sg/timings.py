"""Timings: the five durations every layer works to, validated once.

A :class:`Timings` is built once (from settings or keyword arguments) and passed
down to the group, the heartbeat, the watch and every backend's ``from_url``.
Nothing else declares or re-checks these numbers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields, replace

from sg.errors import ConfigError

__all__ = [
    "MAX_BACKOFF_EXPONENT",
    "MIN_DOWN_TIME_FACTOR",
    "MIN_REPORT_INTERVAL",
    "MIN_TIMEOUT",
    "TIMING_NAMES",
    "Timings",
    "capped_backoff",
    "parse_duration",
]

#: ``service_down_time`` must be at least this many report intervals, so that one
#: late or lost beat never marks a live service down.
MIN_DOWN_TIME_FACTOR = 2.5
#: The shortest report interval accepted, in seconds: faster beats only hammer the
#: store (a fleet of 1,000 services at 0.1 s is already 10,000 writes a second).
MIN_REPORT_INTERVAL = 0.1
#: The shortest store or driver deadline accepted, in seconds.
MIN_TIMEOUT = 0.05
#: The longest duration accepted anywhere, in seconds (one year): larger numbers
#: are typos, and memcached would read a large expiry as an absolute time.
MAX_DURATION = 365 * 24 * 3600.0


#: The largest exponent any backoff uses: ``2**62`` is far past every cap, and an
#: uncapped ``base * 2**attempt`` overflows a float at attempt 1,024 (ZooKeeper's
#: reconnect loop died of it after 13 minutes of refused connections).
MAX_BACKOFF_EXPONENT = 62


def capped_backoff(attempt: int, *, base: float, cap: float) -> float:
    """``base * 2**attempt`` seconds, at most ``cap``; the exponent is capped too, so any
    number of attempts gives a finite delay and never raises."""
    exponent = min(max(attempt, 0), MAX_BACKOFF_EXPONENT)
    return min(cap, base * 2.0**exponent)


def _duration(name: str, value: object, floor: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
    if number < floor:
        raise ConfigError(f"{name} must be at least {floor:g}s, got {number:g}s")
    if number > MAX_DURATION:
        raise ConfigError(f"{name} must be at most {MAX_DURATION:g}s (one year), got {number:g}s")
    return number


@dataclass(frozen=True, slots=True)
class Timings:
    """The five timings, in seconds.

    - ``report_interval``: how often a heartbeat writes (the default for services
      that set none).
    - ``service_down_time``: a record older than this is stale; at least
      :data:`MIN_DOWN_TIME_FACTOR` x ``report_interval``.
    - ``store_timeout`` / ``driver_timeout``: the deadline of one store or driver call.
    - ``max_clock_skew``: the heartbeat warns when the store clock differs by more.
    """

    report_interval: float = 10.0
    service_down_time: float = 60.0
    store_timeout: float = 5.0
    driver_timeout: float = 5.0
    max_clock_skew: float = 2.0

    def __post_init__(self) -> None:
        floors = {
            "report_interval": MIN_REPORT_INTERVAL,
            "service_down_time": MIN_REPORT_INTERVAL * MIN_DOWN_TIME_FACTOR,
            "store_timeout": MIN_TIMEOUT,
            "driver_timeout": MIN_TIMEOUT,
            "max_clock_skew": MIN_TIMEOUT,
        }
        for name, floor in floors.items():
            object.__setattr__(self, name, _duration(name, getattr(self, name), floor))
        self.check_interval(self.report_interval, "report_interval")

    def check_interval(self, interval: object, what: str = "report_interval") -> float:
        """Validate a (per-service) report interval against these timings and return it.

        Raises :class:`ConfigError` naming ``what`` if it is not a duration of at least
        :data:`MIN_REPORT_INTERVAL`, or if ``service_down_time`` is shorter than
        :data:`MIN_DOWN_TIME_FACTOR` intervals.
        """
        value = _duration(what, interval, MIN_REPORT_INTERVAL)
        floor = MIN_DOWN_TIME_FACTOR * value
        if self.service_down_time < floor:
            raise ConfigError(
                f"service_down_time ({self.service_down_time:g}s) must be at least "
                f"{MIN_DOWN_TIME_FACTOR:g} x {what} ({value:g}s), i.e. >= {floor:g}s"
            )
        return value

    def replace(self, **changes: float) -> Timings:
        """A copy with ``changes`` applied, validated again."""
        return replace(self, **changes)

    def beat_timeout(self, backend_timeout: float) -> float:
        """The deadline of one heartbeat write: a beat slower than half the down time
        is as good as lost, whatever the backend's own deadline."""
        return min(backend_timeout, self.service_down_time / 2)


#: The names of the five timings, in order (settings keys of the same names).
TIMING_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Timings))


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw]?)$")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
#: Longest duration :func:`parse_duration` accepts (ten years: how long a service may
#: have been down before a prune): bounded input, finite arithmetic. Not the timings'
#: bound, :data:`MAX_DURATION` (one year), which this once shadowed.
MAX_PARSED_DURATION = 10 * 365 * 86400.0


def parse_duration(text: str, name: str) -> float:
    """``90``, ``90s``, ``15m``, ``12h``, ``7d`` or ``2w`` in seconds (positive, at most
    ten years); else :class:`~sg.errors.ConfigError` naming ``name``."""
    match = _DURATION.match(text.strip().lower())
    seconds = float(match.group(1)) * _UNITS[match.group(2)] if match else math.nan
    if not 0 < seconds <= MAX_PARSED_DURATION:
        raise ConfigError(
            f"{name} must be a positive duration such as 90s, 15m, 12h, 7d or 2w (at most 10 years), "
            f"got {text!r}"
        )
    return seconds
