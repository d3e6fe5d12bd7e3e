"""A reader that samples a group's verdicts at a fixed rate and scores them against the
truth a test knows: which services it killed, and when.

Every sample is one ``group.list()`` (O(1) round trips). A service the test did not
kill that reads ``down`` is a *false down*; a killed service still read ``up`` once
its detection bound has passed is a *false up*; ``unknown`` is counted apart. A
sample whose ``list()`` fails (the store unreachable) counts every known service as
``unknown``: a reader that gets an error cannot claim anything.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskStatus

from sg.errors import BackendUnavailable
from sg.model import ServiceKey

if TYPE_CHECKING:
    from sg.group import ServiceGroup

__all__ = ["Death", "Sample", "Tally", "VerdictSampler"]


@dataclass(frozen=True)
class Death:
    """A service the test killed: when (monotonic) and the bound it must read down by."""

    at: float
    bound: float


@dataclass
class Sample:
    """One reading of the whole group."""

    started: float
    ended: float
    up: int = 0
    down: int = 0
    unknown: int = 0
    false_up: int = 0
    false_down: int = 0
    #: The error ``list()`` raised, when it did.
    error: str | None = None
    #: Set when ``list()`` raised something other than :class:`~sg.errors.BackendUnavailable`
    #: (a backend exception the library failed to translate: a bug to report).
    unexpected: str | None = None
    #: ``state/reason`` of every false reading and every unknown one, counted.
    reasons: Counter[str] = field(default_factory=Counter)


@dataclass
class Tally:
    """Samples summed over a window."""

    samples: int = 0
    failed_reads: int = 0
    #: Reads that raised something other than ``BackendUnavailable``.
    unexpected_errors: int = 0
    up: int = 0
    down: int = 0
    unknown: int = 0
    false_up: int = 0
    false_down: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, sample: Sample) -> None:
        """Add one sample."""
        self.samples += 1
        self.failed_reads += sample.error is not None
        self.unexpected_errors += sample.unexpected is not None
        self.up += sample.up
        self.down += sample.down
        self.unknown += sample.unknown
        self.false_up += sample.false_up
        self.false_down += sample.false_down
        self.reasons.update(sample.reasons)


class VerdictSampler:
    """Sample ``group.list(topic=...)`` every ``interval`` seconds while :meth:`run` runs.

    ``expected`` names the services that should exist; one whose record is missing from
    a successful listing is counted ``down`` (and false if it was not killed). Call
    :meth:`killed` *before* killing a service, with the bound it must be detected by.
    """

    def __init__(
        self,
        group: ServiceGroup,
        *,
        interval: float = 0.1,
        topic: str | None = None,
        expected: Iterable[ServiceKey] = (),
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, not {interval!r}")
        self.group = group
        self.interval = interval
        self.topic = topic
        self.expected: set[ServiceKey] = set(expected)
        self.deaths: dict[ServiceKey, Death] = {}
        #: Seconds from each death to the end of the first read that said ``down``.
        self.detected: dict[ServiceKey, float] = {}
        self.samples: list[Sample] = []
        #: Every change of a service's ``state/reason``: (monotonic time, key, state, reason).
        self.transitions: list[tuple[float, ServiceKey, str, str]] = []
        self._last: dict[ServiceKey, tuple[str, str]] = {}

    def killed(self, key: ServiceKey, bound: float, at: float | None = None) -> None:
        """Record that ``key`` dies now (or at ``at``) and must read down within ``bound`` s."""
        self.deaths[key] = Death(time.monotonic() if at is None else at, bound)

    def alive(self, key: ServiceKey) -> bool:
        """True unless the test killed ``key``."""
        return key not in self.deaths

    async def read_once(self) -> Sample:
        """Read the group once and score it."""
        started = time.monotonic()
        try:
            statuses = await self.group.list(topic=self.topic)
        except BackendUnavailable as exc:
            # BackendTimeout is a BackendUnavailable too.
            return self._failed(started, str(exc), None)
        except Exception as exc:
            # Not a translated backend error: keep sampling, but count it apart so a
            # test can tell a library bug from an outage. Cancellation is not caught.
            return self._failed(started, str(exc), f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}")
        ended = time.monotonic()
        sample = Sample(started, ended)
        seen: set[ServiceKey] = set()
        for status in statuses:
            key = status.service.key
            seen.add(key)
            self._score(sample, key, status.verdict.state, status.verdict.reason)
        for key in self.expected - seen:
            self._score(sample, key, "down", "missing")
        self.expected |= seen
        self.samples.append(sample)
        return sample

    def _failed(self, started: float, error: str, unexpected: str | None) -> Sample:
        sample = Sample(
            started, time.monotonic(), unknown=len(self.expected), error=error, unexpected=unexpected
        )
        sample.reasons["unknown/list_failed" if unexpected is None else "unknown/list_crashed"] += len(
            self.expected
        )
        self.samples.append(sample)
        return sample

    def unexpected_errors(self) -> list[str]:
        """Every untranslated exception ``list()`` raised so far, in order."""
        return [s.unexpected for s in self.samples if s.unexpected is not None]

    def _score(self, sample: Sample, key: ServiceKey, state: str, reason: str) -> None:
        if self._last.get(key) != (state, reason):
            self._last[key] = (state, reason)
            self.transitions.append((sample.ended, key, state, reason))
        death = self.deaths.get(key)
        if state == "up":
            sample.up += 1
            if death is not None and sample.started > death.at + death.bound:
                sample.false_up += 1
                sample.reasons[f"false_up/{reason}"] += 1
        elif state == "down":
            sample.down += 1
            if death is None:
                sample.false_down += 1
                sample.reasons[f"false_down/{reason}"] += 1
            elif key not in self.detected and sample.ended >= death.at:
                self.detected[key] = sample.ended - death.at
        else:
            sample.unknown += 1
            sample.reasons[f"unknown/{reason}"] += 1

    async def run(self, *, task_status: TaskStatus[VerdictSampler] = anyio.TASK_STATUS_IGNORED) -> None:
        """Sample until cancelled (started after the first sample)."""
        next_at = time.monotonic()
        await self.read_once()
        task_status.started(self)
        while True:
            # A fixed rate, not a sleep to synchronise: a slow read skips ticks.
            next_at += self.interval
            now = time.monotonic()
            if next_at < now:
                next_at = now
            await anyio.sleep(next_at - now)
            await self.read_once()

    def tally(self, start: float | None = None, end: float | None = None) -> Tally:
        """Sum the samples that started within ``[start, end)`` (monotonic; open ends)."""
        total = Tally()
        for sample in self.samples:
            if (start is None or sample.started >= start) and (end is None or sample.started < end):
                total.add(sample)
        return total

    def undetected(self) -> dict[ServiceKey, Death]:
        """Killed services never read ``down`` so far."""
        return {k: d for k, d in self.deaths.items() if k not in self.detected}

    def late(self) -> dict[ServiceKey, float]:
        """Killed services detected after their bound: key -> detection seconds."""
        return {k: s for k, s in self.detected.items() if s > self.deaths[k].bound}
