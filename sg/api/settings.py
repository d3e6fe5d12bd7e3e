"""The ``[api]`` table and ``SG_API_TOKEN``: how ``sg-api`` listens and whom it lets in."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sg.config import Settings, boolean, parse_listen, read_table, string, strings
from sg.errors import ConfigError

__all__ = [
    "API_KEYS",
    "DEFAULT_API_LISTEN",
    "MIN_TOKEN_LENGTH",
    "ApiSettings",
    "api_settings",
    "api_settings_from",
]

#: sg-api binds to loopback unless told otherwise.
DEFAULT_API_LISTEN = "127.0.0.1:8775"
#: Shorter bearer tokens are refused: they could be guessed.
MIN_TOKEN_LENGTH = 16
#: Keys of the ``[api]`` table.
API_KEYS: dict[str, Callable[[object], Any]] = {
    "tokens": strings,
    "open_reads": boolean,
    "listen": string,
}


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """The ``[api]`` table: how ``sg-api`` listens and whom it lets in.

    ``tokens`` are bearer tokens (never shown in ``repr``); changes always need one,
    reads too unless ``open_reads``.
    """

    tokens: tuple[str, ...] = field(default=(), repr=False)
    open_reads: bool = False
    listen: str = DEFAULT_API_LISTEN

    def __post_init__(self) -> None:
        parse_listen(self.listen, "[api] listen")
        for index, token in enumerate(self.tokens):
            # The message names the token's position, never its value.
            if len(token) < MIN_TOKEN_LENGTH or token != token.strip() or not token.isprintable():
                raise ConfigError(
                    f"[api] tokens[{index}] must be at least {MIN_TOKEN_LENGTH} printable characters "
                    "without surrounding white space"
                )


def api_settings_from(table: object, env: Mapping[str, str], where: str) -> ApiSettings:
    """Read the ``[api]`` table (``where`` names its file in errors), then add the
    comma-separated tokens of ``SG_API_TOKEN`` from ``env`` to the file's."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: 'api' must be a table ([api])")
    values = read_table(table, API_KEYS, f"{where}: [api]", secret_keys=frozenset({"tokens"}))
    try:
        api = ApiSettings(**values)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    env_tokens = tuple(t.strip() for t in env.get("SG_API_TOKEN", "").split(",") if t.strip())
    if not env_tokens:
        return api
    try:
        return replace(api, tokens=api.tokens + env_tokens)
    except ConfigError as exc:
        raise ConfigError(f"environment SG_API_TOKEN: {exc}") from exc


def api_settings(settings: Settings, env: Mapping[str, str] | None = None) -> ApiSettings:
    """sg-api's settings: the ``[api]`` table that the library handed over unparsed
    (:attr:`sg.config.Settings.sections`), and ``SG_API_TOKEN``."""
    where = str(settings.source) if settings.source is not None else "config"
    return api_settings_from(settings.sections.get("api", {}), os.environ if env is None else env, where)
