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
#: Longest token name (it lands in every audit row).
MAX_TOKEN_NAME = 64


def _named_tokens(value: object) -> tuple[tuple[str, str], ...]:
    """``tokens``: an array of tokens (named ``tokens[0]``, ...) or a table
    ``{NAME = "TOKEN"}`` whose names the audit trail records as who made a change."""
    if isinstance(value, dict):
        if not all(isinstance(token, str) for token in value.values()):
            raise TypeError('an array of strings or a table of NAME = "TOKEN"')
        return tuple((str(name), token) for name, token in value.items())
    return tuple((f"tokens[{index}]", token) for index, token in enumerate(strings(value)))


#: Keys of the ``[api]`` table.
API_KEYS: dict[str, Callable[[object], Any]] = {
    "tokens": _named_tokens,
    "open_reads": boolean,
    "listen": string,
}


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """The ``[api]`` table: how ``sg-api`` listens and whom it lets in.

    ``tokens`` are bearer tokens (never shown in ``repr``); changes always need one,
    reads too unless ``open_reads``. ``token_names`` name them, position by position
    (a token without a name is ``tokens[N]``): the audit trail records who changed what.
    """

    tokens: tuple[str, ...] = field(default=(), repr=False)
    token_names: tuple[str, ...] = ()
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
        if len(self.token_names) > len(self.tokens):
            raise ConfigError("[api] token_names: more names than tokens")
        for name in self.token_names:
            if not name or len(name) > MAX_TOKEN_NAME or not name.isprintable() or name != name.strip():
                raise ConfigError(
                    f"[api] tokens: name {name!r} must be 1 to {MAX_TOKEN_NAME} printable characters "
                    "without surrounding white space"
                )
        names = [name for name, _ in self.named_tokens]
        if len(set(names)) != len(names):
            raise ConfigError("[api] tokens: each token name must be given once")

    @property
    def named_tokens(self) -> tuple[tuple[str, str], ...]:
        """``(name, token)`` pairs; unnamed tokens are ``tokens[N]``."""
        names = self.token_names + tuple(
            f"tokens[{index}]" for index in range(len(self.token_names), len(self.tokens))
        )
        return tuple(zip(names, self.tokens, strict=True))


def api_settings_from(table: object, env: Mapping[str, str], where: str) -> ApiSettings:
    """Read the ``[api]`` table (``where`` names its file in errors), then add the
    comma-separated tokens of ``SG_API_TOKEN`` from ``env`` to the file's."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: 'api' must be a table ([api])")
    values = read_table(table, API_KEYS, f"{where}: [api]", secret_keys=frozenset({"tokens"}))
    if "tokens" in values:
        pairs = values.pop("tokens")
        values["token_names"] = tuple(name for name, _ in pairs)
        values["tokens"] = tuple(token for _, token in pairs)
    try:
        api = ApiSettings(**values)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    env_tokens = tuple(t.strip() for t in env.get("SG_API_TOKEN", "").split(",") if t.strip())
    if not env_tokens:
        return api
    try:
        # Named so the audit trail can tell them apart from the file's.
        names = api.named_tokens
        env_names = tuple(f"SG_API_TOKEN[{index}]" for index in range(len(env_tokens)))
        return replace(
            api,
            tokens=api.tokens + env_tokens,
            token_names=tuple(name for name, _ in names) + env_names,
        )
    except ConfigError as exc:
        raise ConfigError(f"environment SG_API_TOKEN: {exc}") from exc


def api_settings(settings: Settings, env: Mapping[str, str] | None = None) -> ApiSettings:
    """sg-api's settings: the ``[api]`` table that the library handed over unparsed
    (:attr:`sg.config.Settings.sections`), and ``SG_API_TOKEN``."""
    where = str(settings.source) if settings.source is not None else "config"
    return api_settings_from(settings.sections.get("api", {}), os.environ if env is None else env, where)
