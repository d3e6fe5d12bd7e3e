"""Turn a service record and the driver's answer into a :class:`~sg.model.Verdict`.

Pure functions, no I/O: the one place the liveness rules live.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sg.model import (
    RECOVERING,
    Presence,
    Reason,
    Service,
    ServiceStatus,
    State,
    Verdict,
    _StatusTwin,
    _VerdictTwin,
    status_of,
)

__all__ = ["judge", "judge_all", "store_unreachable"]


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
    # Once per row of a listing: no closure, one Verdict built at the end.
    age = service.age
    seen: bool | None = False if driver_seen == RECOVERING else driver_seen
    detail: str | None = None
    state: State = "down"
    reason: Reason
    if service.forced_down:
        reason = "forced_down"
    elif service.check_failure is not None:
        # The agent's local check failed and it left; say why.
        reason, detail = "check_failed", service.check_failure
    elif service.left:
        reason = "left"
    elif age is None:
        reason = "never_reported"
    elif abs(age) > service_down_time:
        reason = "stale"
    elif driver_error is not None or driver_seen is None:
        return Verdict("unknown", "driver_unreachable", age, None, driver_error)
    elif driver_seen == RECOVERING:
        # Lost by the driver in a mass event it knows of: the next beat re-creates it.
        return Verdict("unknown", "driver_recovering", age, False, None)
    elif not driver_seen:
        reason = "not_joined"
    else:
        state, reason = "up", "ok"
    return Verdict(state, reason, age, seen, detail)


def judge_all(
    services: Iterable[Service],
    *,
    service_down_time: float,
    seen: Callable[[tuple[str, str]], Presence],
    driver_error: str | None = None,
) -> tuple[list[ServiceStatus], bool]:
    """Each of ``services`` with the verdict :func:`judge` gives it (``seen`` maps a
    ``(host, binary)`` to the driver's answer), and whether any verdict is ``down``.

    A listing's loop: the common case, a fresh record held by a driver that answered,
    is decided here with the conditions of :func:`judge`'s ``up`` branch and builds the
    same ``Verdict("up", "ok", age, True, None)``; every other record goes through
    :func:`judge` itself, so no rule is written twice.
    """
    statuses: list[ServiceStatus] = []
    append = statuses.append
    any_down = False
    # The up Verdict and its ServiceStatus built inline, as sg.model's fast builders do
    # (two calls per row were a fifth of this loop).
    new, verdict_twin, status_twin = object.__new__, _VerdictTwin, _StatusTwin
    verdict_cls, status_cls = Verdict, ServiceStatus
    for service in services:
        driver_seen = seen((service.host, service.binary))
        age = service.age
        if (
            driver_seen is True
            and driver_error is None
            and age is not None
            and not abs(age) > service_down_time  # as judge() words it: a NaN age is fresh
            and not service.forced_down
            and service.check_failure is None
            and not service.left
        ):
            verdict = new(verdict_twin)
            verdict.state = "up"
            verdict.reason = "ok"
            verdict.age = age
            verdict.driver_seen = True
            verdict.detail = None
            verdict.__class__ = verdict_cls
            status = new(status_twin)
            status.service = service
            status.verdict = verdict
            status.is_up = True
            status.__class__ = status_cls
            append(status)
        else:
            verdict = judge(
                service,
                service_down_time=service_down_time,
                driver_seen=driver_seen,
                driver_error=driver_error,
            )
            if verdict.state == "down":
                any_down = True
            append(status_of(service, verdict))
    return statuses, any_down


def store_unreachable(detail: str) -> Verdict:
    """The verdict when the store could not be read: ``unknown``."""
    return Verdict("unknown", "store_unreachable", None, None, detail)
