"""Configuration errors exit 78 from sgctl, sg-agent and sg-api alike, with a message
naming the option and no traceback (issue 10, defects 3 and 13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sg.testing.servers import free_port
from tests.support.programs import EXIT_CONFIG, PROGRAMS, SERVICE, run_program

pytestmark = pytest.mark.slow


def config_text(tmp_path: Path, body: str) -> str:
    return (
        f'store = "sqlite://{tmp_path}/services.db"\n{body}\n'
        f'[api]\nlisten = "127.0.0.1:{free_port()}"\n{SERVICE}'
    )


def assert_config_error(tmp_path: Path, program: str, body: str, names: str) -> None:
    path = tmp_path / f"{program}.toml"
    path.write_text(config_text(tmp_path, body), encoding="utf-8")
    done = run_program(program, path)
    output = done.stdout + done.stderr
    assert done.returncode == EXIT_CONFIG, output
    assert names in output
    assert "Traceback" not in output


@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize("interval", ["0.0001", "0.05"])
def test_report_interval_below_the_floor_exits_78(tmp_path: Path, program: str, interval: str) -> None:
    """Defect 13: ``report_interval = 0.0001`` hammered the store."""
    body = f"report_interval = {interval}\nservice_down_time = 60"
    assert_config_error(tmp_path, program, body, "report_interval must be at least 0.1s")


def test_per_service_report_interval_below_the_floor_exits_78(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        f'store = "sqlite://{tmp_path}/s.db"\n{SERVICE}report_interval = 0.001\n', encoding="utf-8"
    )
    done = run_program("sg-agent", path)
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "report_interval" in done.stderr


@pytest.mark.parametrize("version", [2**31, 2**63, -1])
def test_agent_version_out_of_range_exits_78(tmp_path: Path, version: int) -> None:
    """Defect 3: a version above 2**31-1 failed every PostgreSQL beat and READY=1 never came."""
    path = tmp_path / "agent.toml"
    path.write_text(f'store = "sqlite://{tmp_path}/s.db"\n{SERVICE}version = {version}\n', encoding="utf-8")
    done = run_program("sg-agent", path)
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "version" in done.stderr
    assert "2147483647" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize(
    ("store", "names"),
    [
        ("postgresql://sg:pw@127.0.0.1:port/sg", "port must be a number"),
        ("postgresql://sg:pw@127.0.0.1:5432/sg?sslmode=bogus", "sslmode must be one of"),
        ("postgresql://sg:pw@127.0.0.1:5432/sg?pool_max=inf", "pool_max"),
        ("sqlite:///tmp/x.db?timeout=nan", "timeout"),
    ],
)
def test_bad_store_url_exits_78(tmp_path: Path, program: str, store: str, names: str) -> None:
    """Defect 11: a traceback (exit 1) or 69 before."""
    path = tmp_path / f"{program}.toml"
    path.write_text(
        f'store = "{store}"\n[api]\nlisten = "127.0.0.1:{free_port()}"\n{SERVICE}', encoding="utf-8"
    )
    done = run_program(program, path)
    output = done.stdout + done.stderr
    assert done.returncode == EXIT_CONFIG, output
    assert names in output
    assert "Traceback" not in output
    assert ":pw@" not in output
