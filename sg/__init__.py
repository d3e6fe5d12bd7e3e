"""servicegroup: service liveness for fleets of hosts.

A service is up only when its SQL record is fresh *and* its liveness driver
(``db``, ``zookeeper``, ``memcached``) still holds it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sg.backends import Backends
    from sg.config import Settings, load_settings
    from sg.errors import (
        BackendTimeout,
        BackendUnavailable,
        ConfigError,
        InvalidName,
        NotFound,
        Refused,
        SGError,
    )
    from sg.group import ServiceGroup
    from sg.heartbeat import Heartbeat, HeartbeatStats
    from sg.model import (
        Actor,
        Member,
        Service,
        ServiceAction,
        ServiceEvent,
        ServiceKey,
        ServiceStatus,
        Verdict,
    )
    from sg.timings import Timings

__all__ = [
    # the group, its heartbeat and its backends
    "ServiceGroup",
    "Heartbeat",
    "HeartbeatStats",
    "Backends",
    # values
    "Member",
    "Service",
    "ServiceEvent",
    "Actor",
    "ServiceAction",
    "ServiceKey",
    "ServiceStatus",
    "Verdict",
    # configuration
    "Settings",
    "Timings",
    "load_settings",
    # errors
    "SGError",
    "ConfigError",
    "InvalidName",
    "BackendUnavailable",
    "BackendTimeout",
    "NotFound",
    "Refused",
]


#: Where each public name lives. Imported on first use (PEP 562): ``import sg.cli`` or
#: ``import sg.model`` runs this package first, and importing every module here made
#: a cold ``sgctl`` pay for the heartbeat, the watch and entry-point scanning.
_LOCATIONS = {
    "Backends": "sg.backends",
    "Settings": "sg.config",
    "load_settings": "sg.config",
    "BackendTimeout": "sg.errors",
    "BackendUnavailable": "sg.errors",
    "ConfigError": "sg.errors",
    "InvalidName": "sg.errors",
    "NotFound": "sg.errors",
    "Refused": "sg.errors",
    "SGError": "sg.errors",
    "ServiceGroup": "sg.group",
    "Heartbeat": "sg.heartbeat",
    "HeartbeatStats": "sg.heartbeat",
    "Member": "sg.model",
    "Service": "sg.model",
    "ServiceEvent": "sg.model",
    "ServiceKey": "sg.model",
    "ServiceStatus": "sg.model",
    "Verdict": "sg.model",
    "Timings": "sg.timings",
}


def __getattr__(name: str) -> Any:
    """Import the module of a public name on first use, and keep the name here."""
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f"module 'sg' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
