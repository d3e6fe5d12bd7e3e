"""Any config value and any store or driver URL: a ``ConfigError`` (exit 78 in sgctl,
sg-agent and sg-api, which all map it so: tests/system/test_config_exit_78.py) or a
working setup; never another exception (a traceback)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agent.settings import agent_settings
from sg import ServiceGroup
from sg.api.settings import api_settings
from sg.backends import load_driver, load_store
from sg.config import load_settings
from sg.errors import ConfigError
from sg.timings import TIMING_NAMES, Timings

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 0.0, -0.0, 1e-9, 0.05, 0.1, 2.5, 1e300, 2**31, 2**31 - 1, 2**63]),
)
VALUES = st.one_of(
    NUMBERS,
    st.text(max_size=12),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    # JSON escapes are TOML escapes, except for surrogates: TOML then refuses the
    # file, which must be a ConfigError too.
    return json.dumps(value)


SERVICE_KEYS = st.sampled_from(["version", "report_interval", "check_timeout", "host", "check"])
GLOBAL_KEYS = st.sampled_from([*TIMING_NAMES, "store", "driver", "metrics_listen"])


def check_settings(path: Path) -> None:
    try:
        settings = load_settings(path, env={})
        agent_settings(settings)
        api_settings(settings, env={})
        ServiceGroup.from_settings(settings)
    except ConfigError:
        pass


@given(
    globals_=st.dictionaries(GLOBAL_KEYS, VALUES, max_size=3),
    service=st.dictionaries(SERVICE_KEYS, VALUES, max_size=3),
)
def test_any_config_value_is_a_config_error_or_works(
    tmp_path_factory: Any, globals_: dict[str, Any], service: dict[str, Any]
) -> None:
    path = tmp_path_factory.mktemp("cfg") / "sg.toml"
    lines = [f"{k} = {toml_value(v)}" for k, v in globals_.items()]
    lines += ["[[service]]", 'binary = "sg-x"', 'topic = "t"']
    lines += [f"{k} = {toml_value(v)}" for k, v in service.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    check_settings(path)


@given(values=st.dictionaries(st.sampled_from(TIMING_NAMES), VALUES, max_size=5))
def test_any_timings_are_a_config_error_or_valid(values: dict[str, Any]) -> None:
    try:
        timings = Timings(**values)
    except ConfigError:
        return
    assert timings.service_down_time >= 2.5 * timings.report_interval
    assert all(0 < getattr(timings, n) < math.inf for n in TIMING_NAMES)


OPTION_VALUES = st.one_of(
    NUMBERS.map(str), st.text(max_size=6), st.sampled_from(["", "nan", "inf", "-1", "0"])
)
HOSTS = st.one_of(
    st.sampled_from(["127.0.0.1", "db1", "[::1]", "h1,h2", "[::1", "h:port", "h:99999", "h:0", "u:p@h", ""]),
    st.text(max_size=10),
)


@st.composite
def urls(draw: st.DrawFn, schemes: list[str], options: list[str]) -> str:
    scheme = draw(st.sampled_from(schemes))
    host = draw(HOSTS)
    port = draw(st.sampled_from(["", ":5432", ":x", ":70000", ":-1"]))
    path = draw(st.sampled_from(["", "/", "/sg", "/tmp/x.db", "/a/b"]))
    query = draw(st.lists(st.tuples(st.sampled_from(options), OPTION_VALUES), max_size=3))
    text = f"{scheme}://{host}{port}{path}"
    if query:
        text += "?" + "&".join(f"{k}={v}" for k, v in query)
    return text


STORE_OPTIONS = ["timeout", "pool_min", "pool_max", "sslmode", "create", "bogus"]
DRIVER_OPTIONS = ["session_timeout", "reconnect_max", "auth", "prefix", "pool_size", "bogus"]


@given(
    url=st.one_of(urls(["sqlite", "postgresql", "postgres", "memory", "nope", ""], STORE_OPTIONS), st.text())
)
def test_any_store_url_is_a_config_error_or_a_store(url: str) -> None:
    try:
        store = load_store(url, Timings())
    except ConfigError:
        return
    assert store is not None


@given(url=st.one_of(urls(["db", "memory", "zookeeper", "memcached", "nope"], DRIVER_OPTIONS), st.text()))
def test_any_driver_url_is_a_config_error_or_a_driver(url: str) -> None:
    try:
        driver = load_driver(url, Timings())
    except ConfigError:
        return
    assert driver is not None
