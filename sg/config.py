"""Settings: one TOML format for the agent and the CLI.

Precedence, lowest first: built-in defaults < the TOML file < environment
(``SG_*``) < explicit overrides (command-line flags). The file is found from
``--config``, then ``$SG_CONFIG``, then ``./servicegroup.toml``, then
``/etc/servicegroup/servicegroup.toml``. Unknown keys and wrong types are errors
that name the key and the file.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sg.checkspec import CheckSpec, parse_check
from sg.errors import ConfigError, InvalidName
from sg.model import validate_name
from sg.redact import redact_url

__all__ = [
    "add_config_argument",
    "DEFAULT_CHECK_TIMEOUT",
    "DEFAULT_CONFIG_PATHS",
    "DEFAULT_DRIVER",
    "DEFAULT_STORE",
    "MIN_DOWN_TIME_FACTOR",
    "ServiceSpec",
    "Settings",
    "find_config_file",
    "load_settings",
    "parse_listen",
    "read_boolean",
    "read_integer",
    "read_number",
    "read_string",
    "read_strings",
    "read_table",
    "redact_url",
]

DEFAULT_STORE = "sqlite:///var/lib/servicegroup/services.db"
DEFAULT_DRIVER = "db://"
DEFAULT_CONFIG_PATHS = (Path("servicegroup.toml"), Path("/etc/servicegroup/servicegroup.toml"))
#: ``service_down_time`` must be at least this many report intervals, so that one
#: late or lost beat never marks a live service down.
MIN_DOWN_TIME_FACTOR = 2.5


def parse_listen(value: str, what: str = "listen") -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[V6]:PORT`` for IPv6) into host and port; :class:`ConfigError` if bad."""
    host, sep, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{what} must be HOST:PORT (e.g. 127.0.0.1:8775), got {value!r}")
    return host, int(port_text)


#: Default bound on one run of a service's local check, in seconds (and at most
#: half the service's report interval).
DEFAULT_CHECK_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A service this host reports for: one ``[[service]]`` table.

    ``check`` gates the heartbeat: the agent beats only while it passes (see
    :mod:`sg.checkspec`). ``report_interval`` overrides the global one for this
    service; ``check_timeout`` bounds one run of the check.
    """

    binary: str
    topic: str
    host: str = field(default_factory=socket.gethostname)
    version: int = 0
    check: CheckSpec | None = None
    check_timeout: float | None = None
    report_interval: float | None = None

    def __post_init__(self) -> None:
        validate_name("host", self.host)
        validate_name("binary", self.binary)
        validate_name("topic", self.topic)
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 0:
            raise InvalidName("version", self.version, "must be a non-negative integer")
        for name in ("check_timeout", "report_interval"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value <= 0):
                raise ConfigError(f"service {self.binary!r}: {name} must be a positive number, got {value!r}")

    def interval(self, default: float) -> float:
        """This service's report interval, given the global one."""
        return self.report_interval or default

    def effective_check_timeout(self, default_interval: float) -> float:
        """The bound on one check run: the configured one, else the default capped at
        half the report interval, so a slow check cannot make the beat late."""
        if self.check_timeout is not None:
            return self.check_timeout
        return min(DEFAULT_CHECK_TIMEOUT, self.interval(default_interval) / 2)


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated settings; build with :func:`load_settings` or directly."""

    store: str = DEFAULT_STORE
    driver: str = DEFAULT_DRIVER
    report_interval: float = 10.0
    service_down_time: float = 60.0
    store_timeout: float = 5.0
    driver_timeout: float = 5.0
    #: Log a warning when the store clock and this host's clock differ by more.
    max_clock_skew: float = 2.0
    services: tuple[ServiceSpec, ...] = ()
    #: ``sg-api`` settings (the ``[api]`` table).
    # A lambda: ApiSettings is imported at the end of this module (see there).
    api: ApiSettings = field(default_factory=lambda: ApiSettings())
    #: ``HOST:PORT`` where ``sg-agent`` serves Prometheus ``/metrics``; ``None`` is off.
    metrics_listen: str | None = None
    #: The file these settings were read from, if any.
    source: Path | None = None

    def __post_init__(self) -> None:
        for name in (
            "report_interval",
            "service_down_time",
            "store_timeout",
            "driver_timeout",
            "max_clock_skew",
        ):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{name} must be a positive number, got {value!r}")
        if self.metrics_listen is not None:
            parse_listen(self.metrics_listen, "metrics_listen")
        floor = MIN_DOWN_TIME_FACTOR * self.report_interval
        if self.service_down_time < floor:
            raise ConfigError(
                f"service_down_time ({self.service_down_time:g}s) must be at least "
                f"{MIN_DOWN_TIME_FACTOR:g} x report_interval ({self.report_interval:g}s), "
                f"i.e. >= {floor:g}s"
            )
        for name in ("store", "driver"):
            url = getattr(self, name)
            if not isinstance(url, str) or ":" not in url:
                raise ConfigError(f"{name} must be a URL such as 'scheme://...', got {url!r}")
        seen: set[tuple[str, str]] = set()
        for spec in self.services:
            key = (spec.host, spec.binary)
            if key in seen:
                raise ConfigError(f"service host={spec.host!r} binary={spec.binary!r} is listed twice")
            seen.add(key)
            interval = spec.interval(self.report_interval)
            if self.service_down_time < MIN_DOWN_TIME_FACTOR * interval:
                raise ConfigError(
                    f"service {spec.binary!r}: report_interval ({interval:g}s) must be at most "
                    f"service_down_time / {MIN_DOWN_TIME_FACTOR:g} ({self.service_down_time:g}s)"
                )
            if spec.check_timeout is not None and spec.check_timeout > interval:
                raise ConfigError(
                    f"service {spec.binary!r}: check_timeout ({spec.check_timeout:g}s) must not exceed "
                    f"its report_interval ({interval:g}s)"
                )


def read_number(value: object) -> float:
    """A number that is not a bool, as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("a number")
    return float(value)


def read_string(value: object) -> str:
    """A string."""
    if not isinstance(value, str):
        raise TypeError("a string")
    return value


def read_integer(value: object) -> int:
    """An integer that is not a bool."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("an integer")
    return value


def read_boolean(value: object) -> bool:
    """A TOML boolean (true or false)."""
    if not isinstance(value, bool):
        raise TypeError("true or false")
    return value


def read_strings(value: object) -> tuple[str, ...]:
    """An array of strings, as a tuple."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TypeError("an array of strings")
    return tuple(value)


#: Top-level keys of the TOML file and how each is read.
SETTINGS_KEYS: dict[str, Callable[[object], Any]] = {
    "store": read_string,
    "driver": read_string,
    "report_interval": read_number,
    "service_down_time": read_number,
    "store_timeout": read_number,
    "driver_timeout": read_number,
    "max_clock_skew": read_number,
    "metrics_listen": read_string,
}
#: Keys whose values are secrets: an error about them never repeats the value.
SECRET_KEYS = frozenset({"tokens"})
#: Keys of a ``[[service]]`` table.
SERVICE_KEYS: dict[str, Callable[[object], Any]] = {
    "host": read_string,
    "binary": read_string,
    "topic": read_string,
    "version": read_integer,
    "check": read_string,
    "check_timeout": read_number,
    "report_interval": read_number,
}
#: Environment variables and the setting each overrides.
ENV_KEYS = {
    "SG_STORE": "store",
    "SG_DRIVER": "driver",
    "SG_REPORT_INTERVAL": "report_interval",
    "SG_SERVICE_DOWN_TIME": "service_down_time",
}


def read_table(
    table: Mapping[str, object], schema: Mapping[str, Callable[[object], Any]], where: str
) -> dict[str, Any]:
    """Read ``table`` with one reader per key; an unknown key or a wrong type is a
    :class:`ConfigError` naming ``where`` and the key (never a secret's value)."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        reader = schema.get(key)
        if reader is None:
            known = ", ".join(sorted(schema))
            raise ConfigError(f"{where}: unknown key {key!r} (known keys: {known})")
        try:
            out[key] = reader(value)
        except TypeError as exc:
            shown = "a secret value" if key in SECRET_KEYS else repr(value)
            raise ConfigError(f"{where}: key {key!r} must be {exc}, got {shown}") from exc
    return out


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--config FILE`` flag every entry point takes, with the lookup order in its help."""
    parser.add_argument(
        "--config",
        help="TOML config file (default: $SG_CONFIG, ./servicegroup.toml, "
        "/etc/servicegroup/servicegroup.toml)",
    )


def find_config_file(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    """Return the config file to read, or ``None`` when there is none.

    A file named explicitly (flag or ``$SG_CONFIG``) must exist; the default
    locations are optional.
    """
    for named, origin in ((explicit, "--config"), (env.get("SG_CONFIG"), "SG_CONFIG")):
        if named:
            path = Path(named)
            if not path.is_file():
                raise ConfigError(f"config file {str(path)!r} (from {origin}) does not exist")
            return path
    for path in DEFAULT_CONFIG_PATHS:
        if path.is_file():
            return path
    return None


def parse_settings(
    document: Mapping[str, object], where: str = "config", env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Check a parsed TOML document and return keyword arguments for :class:`Settings`;
    ``env`` is read only for ``SG_API_TOKEN``."""
    table = dict(document)
    raw_services = table.pop("service", [])
    raw_api = table.pop("api", {})
    values = read_table(table, SETTINGS_KEYS, where)
    values["api"] = api_settings_from(raw_api, env or {}, where)
    if not isinstance(raw_services, list):
        raise ConfigError(f"{where}: 'service' must be an array of tables ([[service]])")
    services = []
    for index, raw in enumerate(raw_services):
        at = f"{where}: service[{index}]"
        if not isinstance(raw, dict):
            raise ConfigError(f"{at} must be a table")
        if isinstance(raw.get("binary"), str):
            at = f"{where}: binary {raw['binary']!r} in service[{index}]"
        fields = read_table(raw, SERVICE_KEYS, at)
        for required in ("binary", "topic"):
            if required not in fields:
                raise ConfigError(f"{at}: missing required key {required!r}")
        if "check" in fields:
            try:
                fields["check"] = parse_check(fields["check"])
            except ValueError as exc:
                raise ConfigError(f"{at}: check {fields['check']!r}: {exc}") from exc
        try:
            services.append(ServiceSpec(**fields))
        except (InvalidName, ConfigError) as exc:
            raise ConfigError(f"{at}: {exc}") from exc
    values["services"] = tuple(services)
    return values


def load_settings(
    config: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load settings from file, environment and ``overrides`` (flags), in that order."""
    env = os.environ if env is None else env
    path = find_config_file(config, env)
    document: dict[str, Any] = {}
    if path is not None:
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from exc
    values = parse_settings(document, where="config" if path is None else str(path), env=env)
    for var, key in ENV_KEYS.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        if SETTINGS_KEYS[key] is read_number:
            try:
                values[key] = float(raw)
            except ValueError as exc:
                raise ConfigError(f"environment {var} must be a number, got {raw!r}") from exc
        else:
            values[key] = raw
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
    try:
        return replace(Settings(), **values, source=path)
    except InvalidName as exc:
        raise ConfigError(str(exc)) from exc


# TEMPORARY, until the config is split: Settings.api keeps working through the API's
# own settings module. At the end of the module because sg.api.settings reads its
# table with the helpers above.
from sg.api.settings import ApiSettings, api_settings_from  # noqa: E402
