"""The systemd units: ``systemd-analyze verify``, the security exposure, and ``make
install`` putting units, scripts and config where the units expect them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.settings import load_agent_settings
from sg.testing.plugin import missing_server
from sg.testing.servers import MissingServer

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
#: The issue's bound for sg-agent.service; the measured figure is in docs/daemon.md.
MAX_EXPOSURE = 2.0


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        missing_server(MissingServer("systemd-analyze not found: apt-get install systemd"))
    assert path is not None
    return path


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [systemd_analyze(), "verify", str(unit)], capture_output=True, text=True, timeout=60
    )


def exposure(unit: Path) -> float:
    done = subprocess.run(
        [systemd_analyze(), "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout + done.stderr)
    assert found, done.stdout + done.stderr
    return float(found.group(1))


@pytest.mark.parametrize("name", ["sg-agent.service", "sg-api.service"])
def test_unit_verifies(tmp_path: Path, name: str) -> None:
    """verify checks every directive, and that ExecStart's binary exists: that binary
    is what ``make install`` puts in /usr/local/bin, so here it stands at a temp path
    (the next test verifies the installed units unchanged)."""
    binary = name.removesuffix(".service")
    stand_in = tmp_path / "bin" / binary
    stand_in.parent.mkdir()
    stand_in.write_text("#!/bin/sh\n")
    stand_in.chmod(0o755)
    text = (UNITS / name).read_text()
    assert f"ExecStart=/usr/local/bin/{binary} --config /etc/servicegroup/servicegroup.toml" in text
    unit = tmp_path / name
    unit.write_text(text.replace(f"/usr/local/bin/{binary}", str(stand_in)))
    done = verify(unit)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""


@pytest.mark.parametrize("name", ["sg-agent.service", "sg-api.service"])
def test_unit_exposure_is_at_most_2(name: str) -> None:
    assert exposure(UNITS / name) <= MAX_EXPOSURE


def test_agent_unit_has_what_the_daemon_relies_on() -> None:
    text = (UNITS / "sg-agent.service").read_text()
    for line in (
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "StateDirectory=servicegroup",
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "SystemCallFilter=@system-service",
    ):
        assert f"\n{line}\n" in text, line
    watchdog = int(re.search(r"\nWatchdogSec=(\d+)\n", text).group(1))  # type: ignore[union-attr]
    stop = int(re.search(r"\nTimeoutStopSec=(\d+)\n", text).group(1))  # type: ignore[union-attr]
    example = load_agent_settings(UNITS / "servicegroup.toml", env={})
    # The watchdog must outlast a round: the interval plus a beat that times out.
    assert watchdog > example.timings.report_interval + example.timings.store_timeout
    # The agent exits within about a second of SIGTERM.
    assert stop >= 2


def test_example_config_and_its_commented_services_load(tmp_path: Path) -> None:
    text = (UNITS / "servicegroup.toml").read_text()
    settings = load_agent_settings(UNITS / "servicegroup.toml", env={})
    assert settings.library.store == "sqlite:///var/lib/servicegroup/services.db"
    assert [s.binary for s in settings.services] == ["sshd"]
    # Uncomment the example [[service]] tables: they must be valid too.
    head, _, tail = text.partition("[[service]]")
    tail = re.sub(r"(?m)^# (\[\[service\]\]|[a-z_]+ = )", r"\1", tail)
    uncommented = tmp_path / "all.toml"
    uncommented.write_text(head + "[[service]]" + tail)
    services = load_agent_settings(uncommented, env={}).services
    assert [s.binary for s in services] == ["sshd", "nova-compute", "postgres"]
    assert all(s.check is not None for s in services)


def test_make_install_units_stages_units_config_and_docs(tmp_path: Path) -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    dest = tmp_path / "root"
    for _ in range(2):
        done = subprocess.run(
            [make, "-s", "-C", str(ROOT), "install-units", f"DESTDIR={dest}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        # A second install keeps the operator's edited config.
        (dest / "etc/servicegroup/servicegroup.toml").write_text("# edited\n")
    for name in ("sg-agent.service", "sg-api.service"):
        assert (dest / "etc/systemd/system" / name).read_text() == (UNITS / name).read_text()
    assert (dest / "etc/servicegroup/servicegroup.toml").read_text() == "# edited\n"
    example = dest / "etc/servicegroup/servicegroup.toml.example"
    assert example.read_text() == (UNITS / "servicegroup.toml").read_text()
    assert (dest / "usr/local/share/doc/servicegroup/daemon.md").is_file()


@pytest.mark.slow
def test_make_install_is_consistent_with_the_unit(tmp_path: Path) -> None:
    """A real install (venv, linked scripts, units) under a temp PREFIX: the installed
    unit verifies as is, so its ExecStart names the installed agent, which runs."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    prefix, venv, units, conf = (tmp_path / d for d in ("prefix", "venv", "units", "etc"))
    done = subprocess.run(
        [
            make,
            "-s",
            "-C",
            str(ROOT),
            "install",
            f"PREFIX={prefix}",
            f"INSTALL_VENV={venv}",
            f"UNITDIR={units}",
            f"CONFDIR={conf}",
            "EXTRAS=postgres",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    unit = units / "sg-agent.service"
    assert f"ExecStart={prefix}/bin/sg-agent --config {conf}/servicegroup.toml" in unit.read_text()
    verified = verify(unit)
    assert verified.returncode == 0, verified.stderr
    assert (prefix / "bin/sg-agent").resolve() == (venv / "bin/sg-agent").resolve()
    helped = subprocess.run(
        [str(prefix / "bin/sg-agent"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0
    assert "--config" in helped.stdout
    assert load_agent_settings(conf / "servicegroup.toml", env={}).services
