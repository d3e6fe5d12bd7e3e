"""The library's settings and the loader of the one TOML file every program reads.

Precedence, lowest first: built-in defaults < the TOML file < environment
(``SG_*``) < explicit overrides (command-line flags). The file is found from
``--config``, then ``$SG_CONFIG``, then ``./servicegroup.toml``, then
``/etc/servicegroup/servicegroup.toml``. Unknown keys and wrong types are errors
that name the key and the file.

The library reads the store, the driver and the five timings. The tables that
belong to an application (``[[service]]`` and ``metrics_listen`` for sg-agent,
``[api]`` for sg-api) are kept unparsed in :attr:`Settings.sections`; each
application validates its own (``agent/settings.py``, ``sg/api/settings.py``).
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sg.errors import ConfigError
from sg.guard import Guard
from sg.timings import TIMING_NAMES, Timings

__all__ = [
    "APPLICATION_KEYS",
    "DEFAULT_CONFIG_PATHS",
    "DEFAULT_DRIVER",
    "DEFAULT_STORE",
    "Settings",
    "add_config_argument",
    "boolean",
    "find_config_file",
    "integer",
    "load_settings",
    "number",
    "parse_listen",
    "read_table",
    "string",
    "strings",
]

DEFAULT_STORE = "sqlite:///var/lib/servicegroup/services.db"
DEFAULT_DRIVER = "db://"
DEFAULT_CONFIG_PATHS = (Path("servicegroup.toml"), Path("/etc/servicegroup/servicegroup.toml"))

#: Top-level keys of the shared file that belong to an application, and which one.
APPLICATION_KEYS = {
    "service": "sg-agent",
    "metrics_listen": "sg-agent",
    "enable_new_services": "sg-agent",
    "api": "sg-api",
}


def parse_listen(value: str, what: str = "listen") -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[V6]:PORT`` for IPv6) into host and port; :class:`ConfigError` if bad."""
    host, sep, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{what} must be HOST:PORT (e.g. 127.0.0.1:8775), got {value!r}")
    return host, int(port_text)


# -- readers of TOML values: each returns the value or raises TypeError naming the type --


def number(value: object) -> float:
    """A TOML integer or float, as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("a number")
    return float(value)


def string(value: object) -> str:
    """A TOML string."""
    if not isinstance(value, str):
        raise TypeError("a string")
    return value


def integer(value: object) -> int:
    """A TOML integer."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("an integer")
    return value


def boolean(value: object) -> bool:
    """A TOML boolean."""
    if not isinstance(value, bool):
        raise TypeError("true or false")
    return value


def strings(value: object) -> tuple[str, ...]:
    """A TOML array of strings."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TypeError("an array of strings")
    return tuple(value)


Reader = Callable[[object], Any]


def read_table(
    table: Mapping[str, object],
    schema: Mapping[str, Reader],
    where: str,
    *,
    secret_keys: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Read ``table`` by ``schema`` (key -> reader); unknown keys and wrong types are
    :class:`ConfigError` naming the key and ``where``. Values of ``secret_keys`` are
    never repeated in a message."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        reader = schema.get(key)
        if reader is None:
            known = ", ".join(sorted(schema))
            raise ConfigError(f"{where}: unknown key {key!r} (known keys: {known})")
        try:
            out[key] = reader(value)
        except TypeError as exc:
            shown = "a secret value" if key in secret_keys else repr(value)
            raise ConfigError(f"{where}: key {key!r} must be {exc}, got {shown}") from exc
    return out


# -- the library's settings -----------------------------------------------------------------


#: The library's top-level keys and how each is read.
SETTINGS_KEYS: dict[str, Reader] = {
    "store": string,
    "driver": string,
    # Drivers some agents may still beat through during a driver roll (readers only).
    "roll_drivers": strings,
    **dict.fromkeys(TIMING_NAMES, number),
    # The fleet guard (sg/guard.py): how large a correlated loss is read as a fleet event.
    "mass_share": number,
    "mass_min_count": integer,
}
#: Environment variables and the setting each overrides.
ENV_KEYS = {
    "SG_STORE": "store",
    "SG_DRIVER": "driver",
    "SG_REPORT_INTERVAL": "report_interval",
    "SG_SERVICE_DOWN_TIME": "service_down_time",
}


@dataclass(frozen=True, slots=True)
class Settings:
    """The library's validated settings: backends, timings, and where they came from.

    Build with :func:`load_settings`, or directly. ``sections`` holds the
    applications' tables of the file, unparsed (see :data:`APPLICATION_KEYS`).
    """

    store: str = DEFAULT_STORE
    driver: str = DEFAULT_DRIVER
    #: During a driver roll, the other drivers agents may still beat through: a reader
    #: judges each record by the driver it names (see docs/roll.md).
    roll_drivers: tuple[str, ...] = ()
    timings: Timings = field(default_factory=Timings)
    guard: Guard = field(default_factory=Guard)
    #: The file these settings were read from, if any.
    source: Path | None = None
    # Not in the repr: the applications' tables hold secrets (sg-api's tokens).
    sections: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    def __post_init__(self) -> None:
        rolled = [(f"roll_drivers[{i}]", url) for i, url in enumerate(self.roll_drivers)]
        for name, url in [("store", self.store), ("driver", self.driver), *rolled]:
            if not isinstance(url, str) or ":" not in url:
                raise ConfigError(f"{name} must be a URL such as 'scheme://...', got {url!r}")
        if not isinstance(self.timings, Timings):
            raise ConfigError(f"timings must be a Timings, got {self.timings!r}")


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


def read_document(path: Path) -> dict[str, object]:
    """Parse the TOML file at ``path``; :class:`ConfigError` naming it if that fails."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from exc


def _timings(values: Mapping[str, Any], where: str) -> Timings:
    given = {name: values[name] for name in TIMING_NAMES if name in values}
    try:
        return Timings(**given)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _guard(values: Mapping[str, Any], where: str) -> Guard:
    given = {
        name: values[key]
        for name, key in (("share", "mass_share"), ("min_count", "mass_min_count"))
        if key in values
    }
    try:
        return Guard(**given)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def load_settings(
    config: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load settings from file, environment and ``overrides`` (flags), in that order.

    ``overrides`` takes ``store``, ``driver`` and the timing names; ``None`` values
    are ignored (a flag that was not given).
    """
    env = os.environ if env is None else env
    path = find_config_file(config, env)
    values: dict[str, Any] = {}
    sections: dict[str, object] = {}
    where = str(path) if path is not None else "config"
    if path is not None:
        document = read_document(path)
        own = {key: value for key, value in document.items() if key not in APPLICATION_KEYS}
        sections = {key: value for key, value in document.items() if key in APPLICATION_KEYS}
        # The applications' keys are in the schema only so that a typo's message lists them.
        values = read_table(own, {**SETTINGS_KEYS, **dict.fromkeys(APPLICATION_KEYS, string)}, where)
    for var, key in ENV_KEYS.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        if SETTINGS_KEYS[key] is number:
            try:
                values[key] = float(raw)
            except ValueError as exc:
                raise ConfigError(f"environment {var} must be a number, got {raw!r}") from exc
        else:
            values[key] = raw
    for key, value in (overrides or {}).items():
        if key not in SETTINGS_KEYS:
            raise ConfigError(f"unknown setting {key!r} (known: {', '.join(sorted(SETTINGS_KEYS))})")
        if value is not None:
            values[key] = value
    return Settings(
        store=values.get("store", DEFAULT_STORE),
        driver=values.get("driver", DEFAULT_DRIVER),
        roll_drivers=tuple(values.get("roll_drivers", ())),
        timings=_timings(values, where),
        guard=_guard(values, where),
        source=path,
        sections=MappingProxyType(sections),
    )
