"""Bad numbers and options in store URLs are configuration errors naming the option
(issue 10, defect 11)."""

from __future__ import annotations

import pytest

from sg.backends import load_store
from sg.errors import ConfigError
from sg.timings import Timings

PG = "postgresql://sg:pw@127.0.0.1:5432/sg"

BAD = [
    ("sqlite:///tmp/x.db?timeout=nan", "timeout"),
    ("sqlite:///tmp/x.db?timeout=inf", "timeout"),
    ("sqlite:///tmp/x.db?timeout=-1", "timeout"),
    ("sqlite:///tmp/x.db?timeout=0", "timeout"),
    ("sqlite:///tmp/x.db?create=maybe", "create"),
    ("sqlite://[::1/x.db", "malformed"),
    (f"{PG}?timeout=nan", "timeout"),
    (f"{PG}?timeout=inf", "timeout"),
    (f"{PG}?timeout=-1", "timeout"),
    (f"{PG}?timeout=0", "timeout"),
    (f"{PG}?pool_max=nan", "pool_max"),
    (f"{PG}?pool_max=inf", "pool_max"),
    (f"{PG}?pool_min=-1", "pool_min"),
    (f"{PG}?sslmode=bogus", "sslmode"),
    ("postgresql://sg:pw@127.0.0.1:port/sg", "port"),
    ("postgresql://sg:pw@127.0.0.1:99999/sg", "port"),
    ("postgresql://sg:pw@127.0.0.1:0/sg", "port"),
    ("postgresql://sg:pw@h1:5432,h2:x/sg", "port"),
    ("postgresql://sg:pw@[::1/sg", "malformed"),
]


@pytest.mark.parametrize(("url", "names"), BAD)
def test_bad_store_url_is_a_config_error_naming_the_option(url: str, names: str) -> None:
    with pytest.raises(ConfigError, match=names) as err:
        load_store(url, Timings())
    assert ":pw@" not in str(err.value)


@pytest.mark.parametrize(
    "url",
    [
        f"{PG}?sslmode=verify-full&timeout=2.5&pool_max=3",
        "postgresql://sg@[::1]:5432,h2:6432/sg",
        "sqlite:///tmp/x.db?timeout=0.5&create=false",
    ],
)
def test_good_store_urls_parse(url: str) -> None:
    assert load_store(url, Timings()) is not None
