"""servicegroup: service liveness for fleets of hosts.

A service is up only when its SQL record is fresh *and* its liveness driver
(``db``, ``zookeeper``, ``memcached``) still holds it.
"""

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
from sg.model import Actor, Member, Service, ServiceAction, ServiceEvent, ServiceKey, ServiceStatus, Verdict
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
