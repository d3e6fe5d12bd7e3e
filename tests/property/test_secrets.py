"""A secret sweep: a secret in every place a secret can be (a store password with
URL-special characters, ZooKeeper digest auth and userinfo, ``http:`` check
credentials, API tokens) never appears in what is shown: redacted URLs, the
configuration errors the three programs print, reprs."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from agent.settings import agent_settings
from sg.api.settings import api_settings
from sg.backends import load_driver, load_store
from sg.config import load_settings
from sg.errors import ConfigError
from sg.redact import redact_url
from sg.timings import Timings

#: Secrets made of printable ASCII, URL-special characters included; at least 6 long,
#: so that one cannot be a piece of the rest of the URL by chance.
SECRETS = st.text(alphabet=string.ascii_letters + string.digits + "#?/@:%[]!$&'()*+,;=-._~", min_size=6)


@given(secret=SECRETS, option=st.sampled_from(["", "?timeout=nan", "?sslmode=bogus", "?pool_max=x", "?x=1"]))
def test_a_postgresql_password_is_never_shown(secret: str, option: str) -> None:
    def shown(password: str) -> str:
        url = f"postgresql://sg:{password}@127.0.0.1:5432/sg{option}"
        try:
            return f"{redact_url(url)} {load_store(url, Timings())!r}"
        except ConfigError as exc:
            return f"{redact_url(url)} {exc}"

    # A secret that is a word of the message itself ("intege") proves nothing.
    assume(secret not in shown("placeholder") + option)
    assert secret not in shown(secret)


@given(secret=SECRETS.filter(lambda s: not set(s) & set("&#?/@:%[]")))
def test_zookeeper_secrets_are_never_shown(secret: str) -> None:
    def shown(password: str) -> str:
        out = []
        for url in (
            f"zookeeper://127.0.0.1:2181/sg?auth=digest:user:{password}",
            f"zookeeper://user:{password}@127.0.0.1:2181/sg",
            f"zookeeper://127.0.0.1:2181/sg?auth=digest:user:{password}&bogus=1",
        ):
            out.append(redact_url(url))
            try:
                driver = load_driver(url, Timings())
                out.append(f"{driver!r} {getattr(driver, 'options', '')!r}")
            except ConfigError as exc:
                out.append(str(exc))
        return "\n".join(out)

    # A secret that is a word of the output itself ("reconn") proves nothing.
    assume(secret not in shown("placeholder"))
    assert secret not in shown(secret)


def errors_of(tmp_path: Path, text: str) -> str:
    path = tmp_path / "sg.toml"
    path.write_text(text, encoding="utf-8")
    shown: list[str] = []
    try:
        settings = load_settings(path, env={})
    except ConfigError as exc:
        return str(exc)
    for read in (agent_settings, lambda s: api_settings(s, env={})):
        try:
            shown.append(repr(read(settings)))
        except ConfigError as exc:
            shown.append(str(exc))
    return "\n".join(shown)


@given(
    secret=SECRETS.filter(lambda s: not set(s) & set("#?/@:%[]\"'\\")),
    url=st.sampled_from(
        [
            "http:http://u:{s}@127.0.0.1:0/x",
            "http:ftp://u:{s}@127.0.0.1/x",
            "http:http://u:{s}@127.0.0.1/x y",
            "http:http://u:{s}@[::1/x",
            "http:http://u:{s}@127.0.0.1:8080/ok",
        ]
    ),
)
def test_http_check_credentials_are_never_in_errors(tmp_path_factory: Any, secret: str, url: str) -> None:
    def shown(password: str) -> str:
        check = url.format(s=password)
        text = f'[[service]]\nbinary = "b"\ntopic = "t"\ncheck = "{check}"\nversion = -1\n'
        return errors_of(tmp_path_factory.mktemp("http"), text)

    assume(secret not in shown("placeholder"))
    assert secret not in shown(secret)


@given(token=st.text(alphabet=string.ascii_letters + string.digits + "-_.~+/=", min_size=6, max_size=80))
def test_api_tokens_are_never_in_errors_or_reprs(tmp_path_factory: Any, token: str) -> None:
    def shown(secret: str) -> str:
        text = f'[api]\ntokens = ["{secret}"]\nlisten = "127.0.0.1:1"\n'
        return errors_of(tmp_path_factory.mktemp("api"), text)

    assume(token not in shown("placeholder-token-0123456789"))
    assert token not in shown(token)
