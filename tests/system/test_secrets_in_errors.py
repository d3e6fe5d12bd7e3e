"""Secrets never appear in what sgctl, sg-agent and sg-api print on their error paths
(issue 10, defect 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sg.errors import ConfigError
from sg.redact import redact_url
from sg.testing.servers import free_port
from tests.support.programs import PROGRAMS, SERVICE, run_program

pytestmark = pytest.mark.slow

SECRET = "S3cr3tVal"


@pytest.mark.parametrize("special", ["#", "?", "/", "[", "@"])
def test_redact_url_masks_passwords_with_url_special_characters(special: str) -> None:
    url = f"postgresql://sg:pa{special}{SECRET}@127.0.0.1:5432/sg"
    shown = redact_url(url)
    assert SECRET not in shown
    assert shown.startswith("postgresql://sg:***@")


def test_zookeeper_url_credentials_are_refused_without_showing_them() -> None:
    from sg.drivers.zookeeper.url import parse_url

    with pytest.raises(ConfigError, match="auth=digest") as err:
        parse_url(f"zookeeper://user:{SECRET}@127.0.0.1:2181/sg")
    assert SECRET not in str(err.value)


def run_all(tmp_path: Path, body: str, service: str = SERVICE) -> None:
    for program in PROGRAMS:
        path = tmp_path / f"{program}.toml"
        path.write_text(f'{body}\n[api]\nlisten = "127.0.0.1:{free_port()}"\n{service}', encoding="utf-8")
        done = run_program(program, path, timeout=60)
        output = done.stdout + done.stderr
        assert done.returncode != 0, (program, output)
        assert SECRET not in output, (program, output)
        assert "Traceback" not in output, (program, output)


@pytest.mark.parametrize("special", ["#", "?", "/"])
def test_postgresql_password_with_special_characters_is_never_printed(tmp_path: Path, special: str) -> None:
    port = free_port()
    run_all(tmp_path, f'store = "postgresql://sg:{SECRET}{special}{SECRET}@127.0.0.1:{port}/sg?timeout=1"')


def test_zookeeper_userinfo_is_never_printed(tmp_path: Path) -> None:
    run_all(
        tmp_path,
        f'store = "sqlite://{tmp_path}/s.db"\ndriver = "zookeeper://u:{SECRET}@127.0.0.1:{free_port()}/sg"',
    )


@pytest.mark.parametrize(
    "check", [f"http:ftp://u:{SECRET}@127.0.0.1/x", f"http:http://u:{SECRET}@127.0.0.1:0/health"]
)
def test_http_check_password_is_not_in_configuration_errors(tmp_path: Path, check: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(f'store = "sqlite://{tmp_path}/s.db"\n{SERVICE}check = "{check}"\n', encoding="utf-8")
    done = run_program("sg-agent", path)
    assert done.returncode == 78, done.stderr
    assert "check" in done.stderr
    assert SECRET not in done.stdout + done.stderr
