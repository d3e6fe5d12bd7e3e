"""servicegroup: service liveness for fleets of hosts.

A service is up only when its SQL record is fresh *and* its liveness driver
(``db``, ``zookeeper``, ``memcached``) still holds it.
"""

from sg.config import ServiceSpec, Settings, load_settings
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
from sg.model import Service, ServiceEvent, ServiceKey, ServiceStatus, Verdict

__all__ = [
    # the group and its heartbeat
    "ServiceGroup",
    "Heartbeat",
    "HeartbeatStats",
    # values
    "Service",
    "ServiceEvent",
    "ServiceKey",
    "ServiceStatus",
    "Verdict",
    # configuration
    "ServiceSpec",
    "Settings",
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
