"""Flap damping for a service's local check, as Consul's ``failures_before_critical``
and ``success_before_passing``.

:class:`Damped` wraps a check (a heartbeat gate: ``None`` while healthy, a reason
while not). It reports a failure only after ``fail_after`` failed runs in a row, and
healthy again only after ``pass_after`` passed runs in a row; in between it repeats
what it last reported. Both 1 is the check itself. It starts healthy, as an
undamped check does until its first failure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

__all__ = ["MAX_ROUNDS", "Damped", "damped"]

#: Largest ``check_fail_after`` / ``check_pass_after``: rounds in a row.
MAX_ROUNDS = 100

GateFn = Callable[[], Awaitable[str | None]]


class Damped:
    """A check whose verdict changes only after ``fail_after`` failures or
    ``pass_after`` passes in a row."""

    def __init__(self, check: GateFn, *, fail_after: int = 1, pass_after: int = 1) -> None:
        for name, value in (("fail_after", fail_after), ("pass_after", pass_after)):
            if not 1 <= value <= MAX_ROUNDS:
                raise ValueError(f"{name} must be from 1 to {MAX_ROUNDS}, got {value!r}")
        self.check = check
        self.fail_after = fail_after
        self.pass_after = pass_after
        #: What the gate reports now: ``None`` healthy, else the reason it is held down.
        self.held: str | None = None
        self._streak = 0  # runs in a row that disagree with what is reported

    def __repr__(self) -> str:
        return f"Damped({self.check!r}, fail_after={self.fail_after}, pass_after={self.pass_after})"

    async def __call__(self) -> str | None:
        """Run the check once; return the damped verdict."""
        failure = await self.check()
        if (failure is None) == (self.held is None):
            self._streak = 0
            if failure is not None:
                self.held = failure  # still failing: the latest reason
            return self.held
        self._streak += 1
        if self._streak >= (self.fail_after if failure is not None else self.pass_after):
            self.held, self._streak = failure, 0
        return self.held


def damped(check: GateFn | None, fail_after: int, pass_after: int) -> GateFn | None:
    """``check`` damped by ``fail_after`` / ``pass_after``; the check itself when both are
    1 (today's behaviour), and ``None`` for no check."""
    if check is None or (fail_after == 1 and pass_after == 1):
        return check
    return Damped(check, fail_after=fail_after, pass_after=pass_after)
