"""Turn a service record and the driver's answer into a :class:`~sg.model.Verdict`.

Pure functions, no I/O: the one place the liveness rules live.
"""

from __future__ import annotations

from sg.model import RECOVERING, Presence, Reason, Service, Verdict

__all__ = ["judge", "store_unreachable"]


def judge(
    service: Service,
    *,
    service_down_time: float,
    driver_seen: Presence,
    driver_error: str | None = None,
) -> Verdict:
    """Decide up, down or unknown for one record.

    Confident ``down`` reasons from the record (forced down, a failed local check,
    left, never reported, stale) win over an unreachable driver; an unreachable driver
    otherwise makes the verdict ``unknown``, never ``up``, and so does a member the
    driver lost in a mass event it knows of (``driver_recovering``). The fleet-wide
    rules over many records at once are :mod:`sg.guard`'s.
    """
    age = service.age
    seen: bool | None = False if driver_seen == RECOVERING else driver_seen

    def down(reason: Reason) -> Verdict:
        return Verdict("down", reason, age, seen, None)

    if service.forced_down:
        return down("forced_down")
    if service.check_failure is not None:
        # The agent's local check failed and it left; say why.
        return Verdict("down", "check_failed", age, seen, service.check_failure)
    if service.left:
        return down("left")
    if age is None:
        return down("never_reported")
    if abs(age) > service_down_time:
        return down("stale")
    if driver_error is not None or driver_seen is None:
        return Verdict("unknown", "driver_unreachable", age, None, driver_error)
    if driver_seen == RECOVERING:
        # Lost by the driver in a mass event it knows of: the next beat re-creates it.
        return Verdict("unknown", "driver_recovering", age, False, None)
    if not driver_seen:
        return down("not_joined")
    return Verdict("up", "ok", age, True, None)


def store_unreachable(detail: str) -> Verdict:
    """The verdict when the store could not be read: ``unknown``."""
    return Verdict("unknown", "store_unreachable", None, None, detail)
