"""Settings: file, environment, flags; every bad input is a clear ConfigError."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from agent.settings import load_agent_settings
from sg import ConfigError, InvalidName, Service, ServiceGroup
from sg.backends import _load_entry_point, load_backend_class
from sg.config import Settings, boolean, find_config_file, load_settings, parse_listen, string, strings
from sg.model import MAX_NAME_LENGTH, validate_name
from sg.redact import redact_url
from sg.timings import Timings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sg.toml"
    path.write_text(text)
    return path


def test_full_file_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
store = "sqlite:///srv/sg.db"
driver = "db://"
report_interval = 5
service_down_time = 20.5
[[service]]
binary = "sg-compute"
topic = "compute"
host = "c1"
version = 7
[[service]]
binary = "sg-sched"
topic = "scheduler"
""",
    )
    s = load_agent_settings(path, env={})
    assert (s.library.store, s.library.driver, s.timings.report_interval, s.timings.service_down_time) == (
        "sqlite:///srv/sg.db",
        "db://",
        5.0,
        20.5,
    )
    assert next((x.host, x.binary, x.topic, x.version) for x in s.services) == (
        "c1",
        "sg-compute",
        "compute",
        7,
    )
    assert s.services[1].host  # defaults to this host's name
    assert s.source == path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stroe = 'x'", "unknown key 'stroe'"),
        ("report_interval = 'ten'", "key 'report_interval' must be a number, got 'ten'"),
        ("report_interval = true", "key 'report_interval' must be a number"),
        ("report_interval = -1", "report_interval must be a positive number"),
        ("report_interval = 0.0001", "report_interval must be at least 0.1s"),
        ("store_timeout = inf", "store_timeout must be a positive number"),
        ("report_interval = 10\nservice_down_time = 20", "must be at least 2.5 x report_interval"),
        ("[[service]]\nbinary = 'b'", "missing required key 'topic'"),
        ("[[service]]\nbinary = 'b'\ntopic = 't'\ncolour = 'red'", "service[0]: unknown key 'colour'"),
        ("[[service]]\nbinary = 'b'\ntopic = 't'\nversion = 1.5", "key 'version' must be an integer"),
        ("[[service]]\nbinary = 'b'\ntopic = 't'\nversion = 2147483648", "must be from 0 to 2147483647"),
        ("[[service]]\nbinary = ''\ntopic = 't'", "invalid binary '': must not be empty"),
        (
            "[[service]]\nbinary = 'b'\ntopic = 't'\nhost='h'\n"
            "[[service]]\nbinary = 'b'\ntopic = 'u'\nhost='h'",
            "listed twice",
        ),
        ("service = 3", "must be an array of tables"),
        ("store = ", "is not valid TOML"),
        ("store = 'no-scheme'", "store must be a URL"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(
        ConfigError, match=message.replace("(", r"\(").replace("[", r"\[").replace(".", r"\.")
    ):
        load_agent_settings(path, env={})


def test_environment_overrides_file_and_flags_override_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "store = 'sqlite:///a.db'\nreport_interval = 1\nservice_down_time = 5")
    env = {"SG_STORE": "sqlite:///b.db", "SG_SERVICE_DOWN_TIME": "9"}
    s = load_settings(path, env=env)
    assert (s.store, s.timings.service_down_time) == ("sqlite:///b.db", 9.0)
    s = load_settings(path, env=env, overrides={"store": "sqlite:///c.db", "driver": None})
    assert (s.store, s.driver) == ("sqlite:///c.db", "db://")


def test_non_numeric_environment_is_named() -> None:
    with pytest.raises(ConfigError, match="SG_REPORT_INTERVAL must be a number, got 'fast'"):
        load_settings(None, env={"SG_REPORT_INTERVAL": "fast", "SG_CONFIG": ""})


def test_config_file_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config_file(None, {}) in (None, Path("/etc/servicegroup/servicegroup.toml"))
    local = tmp_path / "servicegroup.toml"
    local.write_text("")
    assert find_config_file(None, {}) == Path("servicegroup.toml")
    env_file = write(tmp_path, "")
    assert find_config_file(None, {"SG_CONFIG": str(env_file)}) == env_file
    assert find_config_file(local, {"SG_CONFIG": str(env_file)}) == local
    with pytest.raises(ConfigError, match="from SG_CONFIG"):
        find_config_file(None, {"SG_CONFIG": str(tmp_path / "missing.toml")})
    with pytest.raises(ConfigError, match="from --config"):
        find_config_file(tmp_path / "missing.toml", {})


def test_passwords_are_redacted() -> None:
    assert redact_url("postgresql://sg:hunter2@db1:5432/sg") == "postgresql://sg:***@db1:5432/sg"
    assert redact_url("postgresql://sg@db1/sg") == "postgresql://sg@db1/sg"


def test_unknown_scheme_and_malformed_urls() -> None:
    with pytest.raises(ConfigError, match=r"unknown store scheme 'mysql'.*known: .*sqlite"):
        load_backend_class("sg.stores", "mysql://u:secret@h/db", "store")
    with pytest.raises(ConfigError) as info:
        ServiceGroup.from_urls("mysql://u:secret@h/db")
    assert "secret" not in str(info.value)
    with pytest.raises(ConfigError, match="has no scheme"):
        load_backend_class("sg.drivers", "//x", "driver")
    with pytest.raises(ConfigError, match="sqlite takes no host"):
        ServiceGroup.from_urls("sqlite://host/x.db")
    with pytest.raises(ConfigError, match="unknown sqlite option 'journal'"):
        ServiceGroup.from_urls("sqlite:///tmp/x.db?journal=off")
    with pytest.raises(ConfigError, match="the db driver takes no host"):
        ServiceGroup.from_urls("sqlite:///tmp/x.db", "db://somewhere")
    with pytest.raises(ConfigError, match="names no database"):
        ServiceGroup.from_urls("postgresql://127.0.0.1:5")


def test_missing_extra_is_named() -> None:
    ep = EntryPoint(name="fancy", value="sg_no_such_module:Store [fancy]", group="sg.stores")
    with pytest.raises(ConfigError, match=r"pip install 'servicegroup\[fancy\]'"):
        _load_entry_point(ep, "store")


def test_group_refuses_down_time_below_floor() -> None:
    with pytest.raises(ConfigError, match=r"at least 2\.5 x report_interval"):
        ServiceGroup.from_urls("memory://x", "memory://x", report_interval=1, service_down_time=2)
    with pytest.raises(ConfigError):
        Settings(timings=Timings(report_interval=float("nan")))


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "must not be empty"),
        ("a\nb", "control character"),
        ("a\x00b", "control character"),
        (" lead", "white space"),
        ("x" * (MAX_NAME_LENGTH + 1), "longer than"),
        (5, "must be a string"),
    ],
)
def test_invalid_names_name_the_field(value: object, why: str) -> None:
    with pytest.raises(InvalidName, match=why) as info:
        validate_name("host", value)
    assert info.value.field == "host"
    with pytest.raises(InvalidName):
        Service(host="h", binary="b", topic=value)  # type: ignore[arg-type]


def test_valid_odd_names_pass() -> None:
    for name in ("a/b", "..", "with space", "ünï", "x" * MAX_NAME_LENGTH):
        assert validate_name("binary", name) == name


def test_forbidden_characters_are_exactly_the_control_categories() -> None:
    import sys
    import unicodedata

    from sg.model import _FORBIDDEN

    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        expected = unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp")
        assert (_FORBIDDEN.search(ch) is not None) == expected, hex(code)


def test_the_library_leaves_the_applications_tables_to_them(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "metrics_listen = '127.0.0.1:9'\n[api]\nopen_reads = true\n[[service]]\nbinary = 'b'\ntopic = 't'",
    )
    s = load_settings(path, env={})
    assert set(s.sections) == {"metrics_listen", "api", "service"}
    assert s.sections["api"] == {"open_reads": True}


def test_unknown_overrides_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_settings(None, env={"SG_CONFIG": ""}, overrides={"colour": "red"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:8775", ("127.0.0.1", 8775)),
        ("h:1", ("h", 1)),
        ("h:65535", ("h", 65535)),
        ("[::1]:80", ("::1", 80)),  # the brackets of an IPv6 host are dropped
        ("a:b:80", ("a:b", 80)),  # the port is after the last colon
        ("[x:80", ("[x", 80)),  # only a pair of brackets is dropped
        ("x]:80", ("x]", 80)),
    ],
)
def test_parse_listen_splits_host_and_port(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["8775", ":8775", "[]:80", "h:", "h:x1", "h:-1", "h:0", "h:65536", "h:+80"])
def test_parse_listen_refuses_naming_the_setting(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_listen(value, "api.listen")
    assert str(info.value) == f"api.listen must be HOST:PORT (e.g. 127.0.0.1:8775), got {value!r}"
    with pytest.raises(ConfigError, match=r"^listen must be HOST:PORT"):
        parse_listen(value)


def test_the_toml_readers_return_their_value_or_name_the_type() -> None:
    assert string("s") == "s"
    assert boolean(True) is True
    assert boolean(False) is False
    assert strings(["a", "b"]) == ("a", "b")
    assert strings([]) == ()
    for reader, value, wanted in (
        (string, 1, "a string"),
        (boolean, 1, "true or false"),
        (boolean, "true", "true or false"),
        (strings, "ab", "an array of strings"),
        (strings, ["a", 1], "an array of strings"),
        (strings, ("a",), "an array of strings"),
    ):
        with pytest.raises(TypeError) as info:
            reader(value)
        assert str(info.value) == wanted
