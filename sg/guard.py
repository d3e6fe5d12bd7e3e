"""The fleet guard: fleet-wide events never read as mass death.

:func:`sg.verdict.judge` is right for one record at a time. In the fleet-wide
moments (the store could not be written for a while, a memcached server
restarted, many ZooKeeper sessions expired together, a large share of a topic
went quiet at once) many records look dead at the same moment although their
services are alive and will beat again within one interval. The guard turns
those ``down`` verdicts into ``unknown``, with a reason naming the cause, for a
bounded time:

- ``store_recovering``: the store itself was silent. Either no record of the
  whole store has been written for longer than ``service_down_time`` (and the
  store holds at least ``min_count`` records), or beats resumed after such a
  silence within the last recovery window (``report_interval`` plus a margin)
  and this record fell silent together with them (its last stamp within one
  interval of theirs): its own beat is due before the window ends.
- ``driver_recovering``: the driver lost the member in a mass event (the driver
  says so, as memcached does for a server that restarted within the window, or
  more than ``share`` of a topic, and at least ``min_count``, is fresh but not
  held) and the record is younger than the recovery window: the next beat
  re-creates the member.
- ``mass_stale``: more than ``share`` of a topic (and at least ``min_count``)
  turned stale within one ``report_interval``; they read ``unknown`` for one more
  ``service_down_time`` after turning stale, then ``down`` again.

The guard never makes a verdict ``up``, and leaves a lone death alone: one
``kill -9`` in a healthy fleet is ``down`` within the same bound as without it.
Pure functions, no I/O.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sg.errors import ConfigError
from sg.model import Reason, ServiceStatus, StoreContext, Verdict
from sg.timings import Timings

__all__ = [
    "DEFAULT_MIN_COUNT",
    "DEFAULT_SHARE",
    "RECOVERY_MARGIN",
    "SILENCE_LIMIT",
    "Guard",
    "StoreContext",
    "recovery_window",
]

#: The share of a topic that must fall at once for a mass event. Eureka protects at
#: 15 % missing renewals, Kubernetes calls a zone with 55 % not ready partially
#: disrupted; 20 % is above the loss of one host in a topic of ten, where a lone
#: death must read ``down`` at once, and well below a zone's.
DEFAULT_SHARE = 0.2
#: The least number of services that make a mass event: two deaths at once are two deaths.
DEFAULT_MIN_COUNT = 3
#: The margin on one report interval that a live service's next beat needs to land,
#: as a share of the interval (jitter, the beat's own latency).
RECOVERY_MARGIN = 0.5
#: A store silent for more than this many ``service_down_time`` is no longer read as
#: recovering: after that, a fleet that all died reads ``down``.
SILENCE_LIMIT = 10.0


def recovery_window(timings: Timings) -> float:
    """Seconds a live service needs to beat again: one interval plus the margin."""
    return timings.report_interval * (1 + RECOVERY_MARGIN)


@dataclass(frozen=True, slots=True)
class Guard:
    """How large a correlated loss must be to be read as a fleet event."""

    share: float = DEFAULT_SHARE
    min_count: int = DEFAULT_MIN_COUNT

    def __post_init__(self) -> None:
        if isinstance(self.share, bool) or not isinstance(self.share, int | float):
            raise ConfigError(f"mass_share must be a number, got {self.share!r}")
        if not math.isfinite(self.share) or not 0 < self.share < 1:
            raise ConfigError(f"mass_share must be between 0 and 1 (exclusive), got {self.share!r}")
        if isinstance(self.min_count, bool) or not isinstance(self.min_count, int) or self.min_count < 2:
            raise ConfigError(f"mass_min_count must be an integer of at least 2, got {self.min_count!r}")

    def is_mass(self, count: int, of: int) -> bool:
        """Whether ``count`` services out of ``of`` make a mass event."""
        return count >= self.min_count and count > self.share * of

    def apply(
        self,
        statuses: Sequence[ServiceStatus],
        context: StoreContext,
        timings: Timings,
        *,
        topic_sizes: dict[str, int] | None = None,
    ) -> list[ServiceStatus]:
        """The statuses with the guard's ``unknown`` in place of ``down`` where a fleet
        event explains it. ``topic_sizes`` gives the size of each topic when the
        statuses are not whole topics (else they are counted here)."""
        window = recovery_window(timings)
        sizes = topic_sizes if topic_sizes is not None else _count_topics(statuses)
        mass_stale = self._mass_stale(statuses, sizes, timings)
        driver_mass = self._driver_mass(statuses, sizes, window)
        out: list[ServiceStatus] = []
        for status in statuses:
            reason = self._reason(status, context, timings, window, mass_stale, driver_mass)
            if reason is None:
                out.append(status)
            else:
                out.append(ServiceStatus(status.service, _unknown(status.verdict, reason)))
        return out

    def _reason(
        self,
        status: ServiceStatus,
        context: StoreContext,
        timings: Timings,
        window: float,
        mass_stale: set[int],
        driver_mass: set[str],
    ) -> Reason | None:
        verdict = status.verdict
        if verdict.state != "down":
            return None
        age = verdict.age
        if verdict.reason == "stale" and age is not None:
            if _fell_silent_with_store(age, context, self.min_count, timings) or _fell_with_resumed(
                age, context, timings
            ):
                return "store_recovering"
            if id(status) in mass_stale:
                return "mass_stale"
        fresh = age is not None and abs(age) < window
        if verdict.reason == "not_joined" and fresh and status.service.topic in driver_mass:
            return "driver_recovering"
        return None

    def _mass_stale(
        self, statuses: Sequence[ServiceStatus], sizes: dict[str, int], timings: Timings
    ) -> set[int]:
        """ids of the statuses in a mass of records that turned stale within one interval
        and less than one ``service_down_time`` ago."""
        down = timings.service_down_time
        by_topic: dict[str, list[tuple[float, ServiceStatus]]] = defaultdict(list)
        for status in statuses:
            v = status.verdict
            # Stale for less than one more down time: a mass read as one is not held longer.
            if v.state == "down" and v.reason == "stale" and v.age is not None and 0 < v.age - down <= down:
                by_topic[status.service.topic].append((v.age, status))
        found: set[int] = set()
        for topic, rows in by_topic.items():
            if not self.is_mass(len(rows), sizes.get(topic, len(rows))):
                continue
            rows.sort(key=lambda row: row[0])
            # The largest run of stamps within one interval of each other (two pointers).
            best: tuple[int, int] = (0, 0)
            start = 0
            for end in range(len(rows)):
                while rows[end][0] - rows[start][0] > timings.report_interval:
                    start += 1
                if end + 1 - start > best[1] - best[0]:
                    best = (start, end + 1)
            run = rows[best[0] : best[1]]
            if self.is_mass(len(run), sizes.get(topic, len(rows))):
                found.update(id(status) for _, status in run)
        return found

    def _driver_mass(
        self, statuses: Sequence[ServiceStatus], sizes: dict[str, int], window: float
    ) -> set[str]:
        """Topics in which the driver lost a mass of members whose records are fresh."""
        lost: dict[str, int] = defaultdict(int)
        for status in statuses:
            v = status.verdict
            if v.reason == "not_joined" and v.age is not None and abs(v.age) < window:
                lost[status.service.topic] += 1
        return {topic for topic, count in lost.items() if self.is_mass(count, sizes.get(topic, count))}


def _count_topics(statuses: Sequence[ServiceStatus]) -> dict[str, int]:
    sizes: dict[str, int] = defaultdict(int)
    for status in statuses:
        sizes[status.service.topic] += 1
    return sizes


def _fell_silent_with_store(age: float, context: StoreContext, min_count: int, timings: Timings) -> bool:
    """No record of the whole store written for longer than the down time (but not for so
    long that the fleet must have died), and this one was beating when the silence began."""
    newest = context.newest_age
    down = timings.service_down_time
    return (
        context.total >= min_count
        and newest is not None
        and down < newest <= SILENCE_LIMIT * down
        and age <= newest + timings.report_interval
    )


def _fell_with_resumed(age: float, context: StoreContext, timings: Timings) -> bool:
    """Whether a record of ``age`` fell silent together with beats that have resumed."""
    if context.resumed is None:
        return False
    oldest, newest = context.resumed
    slack = timings.report_interval
    return newest - slack <= age <= oldest + slack


def _unknown(verdict: Verdict, reason: Reason) -> Verdict:
    return replace(verdict, state="unknown", reason=reason)
