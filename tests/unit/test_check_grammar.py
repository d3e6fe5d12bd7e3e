"""The ``check`` key of ``[[service]]``: parsed and validated when the config loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.checks.grammar import ExecCheck, HttpCheck, PidfileCheck, SystemdCheck, TcpCheck, parse_check
from agent.settings import load_agent_settings
from sg.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("systemd:nginx.service", SystemdCheck("nginx.service")),
        ("systemd:getty@tty1.service", SystemdCheck("getty@tty1.service")),
        ("tcp:127.0.0.1:5432", TcpCheck("127.0.0.1", 5432)),
        ("tcp:db1.example.com:6379", TcpCheck("db1.example.com", 6379)),
        ("tcp:[::1]:11211", TcpCheck("::1", 11211)),
        ("http:http://127.0.0.1:8080/healthz", HttpCheck("http://127.0.0.1:8080/healthz")),
        ("http:https://h.example/ready?deep=1", HttpCheck("https://h.example/ready?deep=1")),
        ("http://127.0.0.1:8080/healthz", HttpCheck("http://127.0.0.1:8080/healthz")),
        ("exec:pg_isready -h /run/postgresql", ExecCheck(("pg_isready", "-h", "/run/postgresql"))),
        ("exec:test -e '/run/my app/ok'", ExecCheck(("test", "-e", "/run/my app/ok"))),
        ("pidfile:/run/nginx.pid", PidfileCheck("/run/nginx.pid")),
    ],
)
def test_valid_checks_parse(text: str, expected: object) -> None:
    parsed = parse_check(text)
    assert parsed == expected
    # The text form round-trips (it is what logs and the stored reason show).
    assert parse_check(parsed.text) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ping:127.0.0.1", "unknown check kind 'ping'"),
        ("127.0.0.1:80", "unknown check kind"),
        ("tcp:127.0.0.1", "tcp:HOST:PORT"),
        ("tcp:127.0.0.1:http", "port must be a number"),
        ("tcp:127.0.0.1:70000", "port must be a number"),
        ("tcp:::1:80", "IPv6 host in brackets"),
        ("http:ftp://h/x", "expected http:http://"),
        ("http:http://", "expected http:http://"),
        ("http:http://h:99999/", "malformed URL"),
        ("exec:", "names no target"),
        ("exec:'unclosed", "cannot split command"),
        ("pidfile:run/x.pid", "must be absolute"),
        ("systemd:bad unit name", "malformed unit name"),
    ],
)
def test_malformed_checks_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_check(text)


def _config(tmp_path: Path, service: str, head: str = "") -> Path:
    path = tmp_path / "sg.toml"
    path.write_text(
        f'store = "sqlite:{tmp_path}/s.db"\nreport_interval = 1.0\nservice_down_time = 3.0\n{head}\n'
        f'[[service]]\nbinary = "ok"\ntopic = "t"\n\n[[service]]\nbinary = "sg-web"\ntopic = "t"\n{service}\n'
    )
    return path


def test_config_reads_check_interval_and_timeout(tmp_path: Path) -> None:
    path = _config(tmp_path, 'check = "tcp:127.0.0.1:80"\ncheck_timeout = 0.5\nreport_interval = 0.5')
    settings = load_agent_settings(path, env={})
    web = settings.services[1]
    assert web.check == TcpCheck("127.0.0.1", 80)
    assert web.check_timeout == 0.5
    assert web.interval(settings.timings) == 0.5
    assert settings.services[0].check is None
    assert settings.services[0].interval(settings.timings) == 1.0
    # The default timeout is capped at half the interval.
    assert settings.services[0].effective_check_timeout(settings.timings) == 0.5


@pytest.mark.parametrize(
    ("service", "message"),
    [
        ('check = "nope:x"', "binary 'sg-web' in service\\[1\\]: check 'nope:x': unknown check kind"),
        ('check = "tcp:h:0"', "binary 'sg-web'.*port must be a number"),
        ("check = 5", "binary 'sg-web'.*'check' must be a string"),
        ('check = "exec:true"\ncheck_timeout = 0', "binary 'sg-web'.*check_timeout must be a positive"),
        ('check = "exec:true"\ncheck_timeout = 2.0', "check_timeout \\(2s\\) must not exceed"),
        (
            "report_interval = 2.0",
            "service_down_time \\(3s\\) must be at least 2.5 x service 'sg-web': report_interval \\(2s\\)",
        ),
    ],
)
def test_config_errors_name_the_service(tmp_path: Path, service: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_agent_settings(_config(tmp_path, service), env={})
