"""sg-api's ``[api]`` table and ``SG_API_TOKEN``, and the agent's ``metrics_listen``, read from
the shared file (the library hands each application its own tables)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.settings import agent_settings
from sg.api.settings import DEFAULT_API_LISTEN, ApiSettings, api_settings
from sg.config import load_settings, parse_listen
from sg.errors import ConfigError

TOKEN = "config-token-0123456789abcdef"


@dataclass
class Loaded:
    """What each application reads from one file."""

    api: ApiSettings
    metrics_listen: str | None


def read(path: Path | None, env: dict[str, str]) -> Loaded:
    library = load_settings(path, env=env)
    return Loaded(api_settings(library, env), agent_settings(library).metrics_listen)


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Loaded:
    path = tmp_path / "sg.toml"
    path.write_text(text, encoding="utf-8")
    return read(path, env or {})


def test_defaults_are_loopback_no_tokens_no_metrics(tmp_path: Path) -> None:
    settings = read(None, {"SG_CONFIG": ""})
    assert settings.api == ApiSettings()
    assert settings.api.listen == DEFAULT_API_LISTEN == "127.0.0.1:8775"
    assert settings.api.tokens == ()
    assert settings.api.open_reads is False
    assert settings.metrics_listen is None


def test_api_table_is_read(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        'metrics_listen = "127.0.0.1:9105"\n'
        f'[api]\ntokens = ["{TOKEN}"]\nopen_reads = true\nlisten = "[::1]:9000"\n',
    )
    assert settings.api.tokens == (TOKEN,)
    assert settings.api.open_reads is True
    assert parse_listen(settings.api.listen) == ("::1", 9000)
    assert settings.metrics_listen == "127.0.0.1:9105"


def test_env_tokens_add_to_the_file(tmp_path: Path) -> None:
    other = "env-token-0123456789abcdef0"
    settings = load(tmp_path, f'[api]\ntokens = ["{TOKEN}"]\n', env={"SG_API_TOKEN": f"{other}, x{other}"})
    assert settings.api.tokens == (TOKEN, other, f"x{other}")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[api]\ncolour = 1\n", "'colour'"),
        ("[api]\nopen_reads = 1\n", "open_reads"),
        ('[api]\nlisten = "8775"\n', "listen"),
        ('[api]\nlisten = "127.0.0.1:99999"\n', "listen"),
        ('metrics_listen = "localhost"\n', "metrics_listen"),
        ("metrics_listen = 9105\n", "metrics_listen"),
        ('api = "x"\n', "'api' must be a table"),
    ],
)
def test_bad_api_settings_name_the_key(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load(tmp_path, text)


@pytest.mark.parametrize(
    "tokens", ['"just-a-string-not-a-list"', '["short-secret"]', '[" padded-secret-012345678 "]']
)
def test_bad_tokens_are_errors_that_never_show_the_token(tmp_path: Path, tokens: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, f"[api]\ntokens = {tokens}\n")
    message = str(caught.value)
    assert "tokens" in message
    for secret in ("just-a-string-not-a-list", "short-secret", "padded-secret"):
        assert secret not in message


def test_short_env_token_is_an_error_without_the_token(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, "", env={"SG_API_TOKEN": "tiny-secret"})
    assert "tiny-secret" not in str(caught.value)


def test_repr_hides_tokens() -> None:
    assert TOKEN not in repr(ApiSettings(tokens=(TOKEN,)))


def test_token_names_come_from_a_table_and_env_tokens_are_named_apart(tmp_path: Path) -> None:
    other = "env-token-0123456789abcdef0"
    settings = load(
        tmp_path, f'[api.tokens]\nalice = "{TOKEN}"\nci = "{other}x"\n', env={"SG_API_TOKEN": other}
    )
    assert settings.api.named_tokens == (("alice", TOKEN), ("ci", f"{other}x"), ("SG_API_TOKEN[0]", other))
    plain = load(tmp_path, f'[api]\ntokens = ["{TOKEN}"]\n')
    assert plain.api.named_tokens == (("tokens[0]", TOKEN),)
    assert TOKEN not in repr(settings.api)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[api.tokens]\nalice = 1\n", "'tokens' must be an array of strings or a table"),
        (
            f'[api.tokens]\nalice = "{TOKEN}"\n"tokens[1]" = "{TOKEN}x"\nx = "short"\n',
            r"tokens\[2\] must be at least",
        ),
        (f'[api.tokens]\n" alice" = "{TOKEN}"\n', "name ' alice' must be"),
    ],
)
def test_bad_token_tables_name_the_problem_never_the_token(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as caught:
        load(tmp_path, text)
    assert TOKEN not in str(caught.value)
