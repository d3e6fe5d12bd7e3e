"""sg-agent's settings: the ``[[service]]`` tables and ``metrics_listen``.

They live in the same TOML file as the library's settings (:mod:`sg.config`), which
hands them over unparsed in :attr:`sg.config.Settings.sections`; this module
validates them against the library's :class:`~sg.timings.Timings`.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.checks.damping import MAX_ROUNDS
from agent.checks.grammar import CheckSpec, parse_check
from sg.config import Settings, boolean, integer, load_settings, number, parse_listen, read_table, string
from sg.errors import ConfigError, InvalidName
from sg.model import DEFAULT_ZONE, Member
from sg.redact import redact_url
from sg.timings import Timings

__all__ = [
    "DEFAULT_CHECK_TIMEOUT",
    "AgentSettings",
    "ServiceSpec",
    "agent_settings",
    "load_agent_settings",
]

#: Default bound on one run of a service's local check, in seconds (and at most
#: half the service's report interval).
DEFAULT_CHECK_TIMEOUT = 2.0

#: Keys of a ``[[service]]`` table.
SERVICE_KEYS = {
    "host": string,
    "binary": string,
    "topic": string,
    "version": integer,
    "check": string,
    "check_timeout": number,
    "report_interval": number,
    "check_fail_after": integer,
    "check_pass_after": integer,
    "zone": string,
    "enable_new_services": boolean,
}


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A service this host reports for: one ``[[service]]`` table.

    ``check`` gates the heartbeat: the agent beats only while it passes (see
    :mod:`agent.checks`). ``report_interval`` overrides the global one for this
    service; ``check_timeout`` bounds one run of the check. ``check_fail_after`` /
    ``check_pass_after`` damp it: that many failed (passed) runs in a row before the
    service is held down (beats again). ``zone`` is shown by os-services.
    ``enable_new`` (``enable_new_services``, Nova's option) false makes a record this
    service creates start disabled, reason ``new service``.
    """

    binary: str
    topic: str
    host: str = field(default_factory=socket.gethostname)
    version: int = 0
    check: CheckSpec | None = None
    check_timeout: float | None = None
    report_interval: float | None = None
    check_fail_after: int = 1
    check_pass_after: int = 1
    zone: str = DEFAULT_ZONE
    enable_new: bool = True

    def __post_init__(self) -> None:
        self.member  # noqa: B018 - validates host, binary, topic, version and zone once, in the model
        for name in ("check_fail_after", "check_pass_after"):
            value = getattr(self, name)
            if not 1 <= value <= MAX_ROUNDS:
                raise ConfigError(
                    f"service {self.binary!r}: {name} must be from 1 to {MAX_ROUNDS}, got {value!r}"
                )
        for name in ("check_timeout", "report_interval"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value <= 0):
                raise ConfigError(f"service {self.binary!r}: {name} must be a positive number, got {value!r}")

    @property
    def member(self) -> Member:
        """What this service's heartbeat reports."""
        return Member(self.host, self.binary, self.topic, self.version, self.zone, self.enable_new)

    def interval(self, timings: Timings) -> float:
        """This service's report interval, given the global timings."""
        return self.report_interval or timings.report_interval

    def effective_check_timeout(self, timings: Timings) -> float:
        """The bound on one check run: the configured one, else the default capped at
        half the report interval, so a slow check cannot make the beat late."""
        if self.check_timeout is not None:
            return self.check_timeout
        return min(DEFAULT_CHECK_TIMEOUT, self.interval(timings) / 2)

    def validate(self, timings: Timings) -> None:
        """Check this service's own timings against the global ones; :class:`ConfigError`."""
        what = f"service {self.binary!r}"
        if self.report_interval is not None:
            timings.check_interval(self.report_interval, f"{what}: report_interval")
        interval = self.interval(timings)
        if self.check_timeout is not None and self.check_timeout > interval:
            raise ConfigError(
                f"{what}: check_timeout ({self.check_timeout:g}s) must not exceed "
                f"its report_interval ({interval:g}s)"
            )


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """Everything sg-agent runs from: the library's settings plus its services."""

    library: Settings
    services: tuple[ServiceSpec, ...] = ()
    #: ``HOST:PORT`` where ``sg-agent`` serves Prometheus ``/metrics``; ``None`` is off.
    metrics_listen: str | None = None

    def __post_init__(self) -> None:
        if self.metrics_listen is not None:
            parse_listen(self.metrics_listen, "metrics_listen")
        seen: set[tuple[str, str]] = set()
        for spec in self.services:
            key = (spec.host, spec.binary)
            if key in seen:
                raise ConfigError(f"service host={spec.host!r} binary={spec.binary!r} is listed twice")
            seen.add(key)
            spec.validate(self.library.timings)

    @property
    def timings(self) -> Timings:
        """The library's timings."""
        return self.library.timings

    @property
    def source(self) -> Path | None:
        """The file these settings were read from, if any."""
        return self.library.source

    def require_services(self) -> None:
        """Refuse a configuration with no ``[[service]]``: at start and at reload alike."""
        if not self.services:
            where = self.source or "the configuration"
            raise ConfigError(f"{where}: no [[service]] tables; the agent has nothing to report")


def _service(raw: object, index: int, where: str, enable_new: bool = True) -> ServiceSpec:
    at = f"{where}: service[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{at} must be a table")
    if isinstance(raw.get("binary"), str):
        at = f"{where}: binary {raw['binary']!r} in service[{index}]"
    fields: dict[str, Any] = read_table(raw, SERVICE_KEYS, at)
    fields["enable_new"] = fields.pop("enable_new_services", enable_new)
    for required in ("binary", "topic"):
        if required not in fields:
            raise ConfigError(f"{at}: missing required key {required!r}")
    if "check" in fields:
        try:
            fields["check"] = parse_check(fields["check"])
        except ValueError as exc:
            raise ConfigError(f"{at}: check {_shown_check(fields['check'])!r}: {exc}") from exc
    try:
        return ServiceSpec(**fields)
    except (InvalidName, ConfigError) as exc:
        raise ConfigError(f"{at}: {exc}") from exc


def _shown_check(check: object) -> object:
    """A check as an error may show it: an ``http:`` URL's password masked."""
    if isinstance(check, str) and check.startswith("http:"):
        return f"http:{redact_url(check.removeprefix('http:'))}"
    return check


def agent_settings(settings: Settings) -> AgentSettings:
    """Validate the agent's sections of ``settings`` (``[[service]]``, ``metrics_listen``)."""
    where = str(settings.source) if settings.source is not None else "config"
    sections: Mapping[str, object] = settings.sections
    raw_services = sections.get("service", [])
    if not isinstance(raw_services, list):
        raise ConfigError(f"{where}: 'service' must be an array of tables ([[service]])")
    # Nova's enable_new_services, for every [[service]] that does not set its own.
    enable_new = sections.get("enable_new_services", True)
    if not isinstance(enable_new, bool):
        raise ConfigError(f"{where}: key 'enable_new_services' must be true or false, got {enable_new!r}")
    services = tuple(_service(raw, index, where, enable_new) for index, raw in enumerate(raw_services))
    listen = sections.get("metrics_listen")
    if listen is not None and not isinstance(listen, str):
        raise ConfigError(f"{where}: key 'metrics_listen' must be a string, got {listen!r}")
    try:
        return AgentSettings(settings, services, listen)
    except ConfigError as exc:
        if str(exc).startswith(where):
            raise
        raise ConfigError(f"{where}: {exc}") from exc


def load_agent_settings(
    config: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> AgentSettings:
    """Load the file (see :func:`sg.config.load_settings`) and validate the agent's part."""
    return agent_settings(load_settings(config, env=env))
