"""End to end with real processes: sg-agent beats, sgctl reads, signals stop it."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from sg import ServiceGroup
from tests.support.processes import agent, sgctl, sgctl_json, write_config
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

REPORT_INTERVAL = 0.2
DOWN_TIME = 1.0


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "sg.toml",
        f"sqlite://{tmp_path}/services.db",
        report_interval=REPORT_INTERVAL,
        service_down_time=DOWN_TIME,
    )


@pytest.fixture
async def reader(tmp_path: Path, config: Path) -> ServiceGroup:
    async with ServiceGroup.from_urls(
        f"sqlite://{tmp_path}/services.db", report_interval=REPORT_INTERVAL, service_down_time=DOWN_TIME
    ) as group:
        yield group


async def wait_up(reader: ServiceGroup) -> None:
    async def probe() -> str:
        try:
            return (await reader.get("h1", "sg-e2e")).verdict.state
        except Exception as exc:  # the record may not exist yet
            return type(exc).__name__

    await eventually(probe, lambda state: state == "up", 20, "agent's service up")


async def test_sgctl_lists_agent_up_and_sigterm_makes_it_down_within_1s(
    tmp_path: Path, config: Path, reader: ServiceGroup
) -> None:
    with agent(config, tmp_path / "agent.log") as proc:
        await wait_up(reader)
        rows = sgctl_json("service", "list", config=config)
        assert [(r["host"], r["binary"], r["topic"], r["state"], r["reason"]) for r in rows] == [
            ("h1", "sg-e2e", "e2e", "up", "ok")
        ]
        assert rows[0]["report_count"] >= 1
        table = sgctl("service", "list", config=config)
        assert table.returncode == 0
        assert table.stdout.splitlines()[0].split()[:5] == ["Binary", "Host", "Topic", "Status", "State"]
        assert " up " in table.stdout

        proc.send_signal(signal.SIGTERM)
        status, took = await eventually(
            lambda: reader.get("h1", "sg-e2e"), lambda s: not s.is_up, 1.0, "down after SIGTERM"
        )
        assert status.verdict.reason == "left"
        stopped = time.monotonic()
        assert proc.wait(5) == 0
        assert time.monotonic() - stopped < 1.0 + took
    rows = sgctl_json("service", "list", config=config)
    assert (rows[0]["state"], rows[0]["reason"]) == ("down", "left")
    assert '"event": "service_left"' in (tmp_path / "agent.log").read_text()


async def test_kill_9_is_down_stale_after_down_time_not_before(
    tmp_path: Path, config: Path, reader: ServiceGroup
) -> None:
    with agent(config, tmp_path / "agent.log") as proc:
        await wait_up(reader)
        proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        proc.wait(5)
        status, _ = await eventually(
            lambda: reader.get("h1", "sg-e2e"),
            lambda s: not s.is_up,
            # The bound: the down time after the kill, plus 2 s of margin for a loaded
            # 2-core machine (the reader polls every 10 ms).
            DOWN_TIME + 2.0,
            "down after kill -9",
            interval=0.01,
        )
        went_down = time.monotonic() - killed
    assert status.verdict.reason == "stale"
    # Not too early: judged by the store's own clock (the age at the verdict), since a
    # loaded agent's last beat may have landed any time before the kill.
    assert status.verdict.age is not None
    assert status.verdict.age > DOWN_TIME, status.verdict.age
    assert went_down <= DOWN_TIME + 2.0, went_down
    rows = sgctl_json("service", "list", config=config)
    assert (rows[0]["state"], rows[0]["reason"]) == ("down", "stale")


async def test_refused_and_bad_commands_change_nothing(
    tmp_path: Path, config: Path, reader: ServiceGroup
) -> None:
    with agent(config, tmp_path / "agent.log"):
        await wait_up(reader)
        before = sgctl_json("service", "show", "h1", "sg-e2e", config=config)

        refused = sgctl("service", "delete", "h1", "sg-e2e", config=config)
        assert refused.returncode == 1
        assert "is up" in refused.stderr

        missing = sgctl("service", "disable", "h1", "nope", config=config)
        assert missing.returncode == 1
        assert "no service" in missing.stderr

        bad_name = sgctl("service", "show", "h1", "bad\nname", config=config)
        assert bad_name.returncode == 2
        assert "invalid binary" in bad_name.stderr

        usage = sgctl("service", "frobnicate", config=config)
        assert usage.returncode == 2

        bad_url = sgctl("--store", "nosuch://x", "service", "list", config=config)
        assert bad_url.returncode == 78
        assert "unknown store scheme 'nosuch'" in bad_url.stderr

        after = sgctl_json("service", "show", "h1", "sg-e2e", config=config)
        for field in ("id", "uuid", "disabled", "disabled_reason", "forced_down", "state", "topic"):
            assert after[field] == before[field], field

        assert sgctl("service", "disable", "h1", "sg-e2e", "--reason", "maint", config=config).returncode == 0
        assert sgctl("service", "force-down", "h1", "sg-e2e", config=config).returncode == 0
        shown = sgctl_json("service", "show", "h1", "sg-e2e", config=config)
        assert (shown["status"], shown["disabled_reason"], shown["state"], shown["reason"]) == (
            "disabled",
            "maint",
            "down",
            "forced_down",
        )
        assert sgctl("service", "force-down", "h1", "sg-e2e", "--off", config=config).returncode == 0
        assert sgctl("service", "enable", "h1", "sg-e2e", config=config).returncode == 0
        assert sgctl_json("service", "min-version", "sg-e2e", "--only-up", config=config) == {
            "binary": "sg-e2e",
            "min_version": 0,
        }
        assert sgctl("service", "min-version", "nope", config=config).returncode == 1


def test_config_errors_exit_78(tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("store = 'sqlite:///tmp/x.db'\nreport_intervall = 3\n")
    for argv in (["service", "list"],):
        done = sgctl(*argv, config=unknown)
        assert done.returncode == 78
        assert "unknown key 'report_intervall'" in done.stderr
    non_numeric = tmp_path / "nan.toml"
    non_numeric.write_text("report_interval = 'often'\n")
    assert sgctl("service", "list", config=non_numeric).returncode == 78
    assert sgctl("service", "list", config=tmp_path / "absent.toml").returncode == 78


def test_agent_config_errors_exit_78(tmp_path: Path) -> None:
    import subprocess

    from tests.support.processes import clean_env, script

    cases = {
        "report_interval = 'often'\n": "must be a number",
        "store = 'sqlite:///tmp/x.db'\n": "no [[service]] tables",
        "driver = 'carrier-pigeon://'\n[[service]]\nbinary='b'\ntopic='t'\n": "unknown driver scheme",
    }
    for text, message in cases.items():
        path = tmp_path / "bad.toml"
        path.write_text(text)
        done = subprocess.run(
            [script("sg-agent"), "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
            env=clean_env(),
        )
        assert done.returncode == 78, done.stderr
        assert message in done.stderr


async def test_backend_unreachable_exits_69(tmp_path: Path) -> None:
    from sg.testing import free_port

    path = write_config(tmp_path / "pg.toml", f"postgresql://sg:pw-not-shown@127.0.0.1:{free_port()}/sg")
    done = sgctl("service", "list", config=path)
    assert done.returncode == 69
    assert "postgresql unavailable" in done.stderr
    assert "pw-not-shown" not in done.stderr + done.stdout


def test_sgctl_reports_a_newer_schema_as_a_configuration_error(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "services.db"
    # sgctl never creates a database unless told to (issue 10, defect 14).
    assert sgctl("--store", f"sqlite://{db}?create=true", "service", "list").returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO sg_schema (version) VALUES (99)")
    done = sgctl("--store", f"sqlite://{db}", "service", "list")
    assert done.returncode == 78
    assert "schema version 99, newer than this release" in done.stderr
    assert "Traceback" not in done.stderr
