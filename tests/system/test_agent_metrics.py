"""sg-agent's /metrics on metrics_listen, from a real sg-agent process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sg.testing.servers import free_port, stop_pid, wait_until

LABELS = {"topic": "compute", "binary": "nova-compute", "host": "m1"}


def sg_agent_command() -> list[str]:
    script = Path(sys.executable).parent / "sg-agent"
    return [str(script)] if script.exists() else [sys.executable, "-m", "agent"]


def samples(text: str) -> dict[str, float]:
    """``name`` -> value for the samples of service m1 (and unlabelled ones)."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.labels or sample.labels.get("host") == "m1":
                bucket = sample.labels.get("le")
                out[sample.name if bucket is None else f"{sample.name}[{bucket}]"] = sample.value
    return out


def test_agent_serves_beat_metrics(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "agent.toml"
    config.write_text(
        f'store = "sqlite://{tmp_path}/services.db"\ndriver = "db://"\n'
        f'report_interval = 0.3\nservice_down_time = 3.0\nmetrics_listen = "127.0.0.1:{port}"\n'
        '[[service]]\nhost = "m1"\nbinary = "nova-compute"\ntopic = "compute"\n',
        encoding="utf-8",
    )
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*sg_agent_command(), "--config", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        seen: dict[str, float] = {}

        def two_beats() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1.0)
            except httpx.TransportError:
                return False
            seen.clear()
            seen.update(samples(r.text))
            return seen.get("sg_agent_beats_total", 0) >= 2

        wait_until(two_beats, 20.0, "two beats counted on the agent's /metrics")
        assert seen["sg_agent_beat_failures_total"] == 0
        assert seen["sg_agent_rejoins_total"] == 0
        assert seen["sg_agent_beat_duration_seconds_count"] >= 2
        assert 0 <= seen["sg_agent_last_success_age_seconds"] < 3.0
        # SQLite stamps with the writer's clock: the skew is tiny but measured.
        assert abs(seen["sg_agent_store_clock_skew_seconds"]) < 1.0
        assert httpx.get(f"http://127.0.0.1:{port}/other", timeout=2.0).status_code == 404
    finally:
        stop_pid(proc)
    assert proc.returncode == 0
    assert "metrics_listening" in log.read_text()


def test_metrics_are_off_by_default(tmp_path: Path) -> None:
    from agent.daemon import Agent
    from agent.settings import AgentSettings, ServiceSpec
    from sg.config import Settings

    agent = Agent(AgentSettings(Settings(), services=(ServiceSpec(binary="b", topic="t", host="h"),)))
    assert agent.metrics is None


@pytest.mark.parametrize("listen", ["127.0.0.1", "localhost:0"])
def test_bad_metrics_listen_exits_78(tmp_path: Path, listen: str) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'metrics_listen = "{listen}"\n[[service]]\nbinary = "b"\ntopic = "t"\n',
        encoding="utf-8",
    )
    done = subprocess.run([*sg_agent_command(), "--config", str(config)], capture_output=True, timeout=30)
    assert done.returncode == 78
    assert b"metrics_listen" in done.stdout + done.stderr


async def test_a_busy_metrics_port_turns_metrics_off_not_the_agent() -> None:
    import socket

    import anyio

    from agent.metrics import AgentMetrics

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        async with anyio.create_task_group() as tg:
            assert await tg.start(AgentMetrics().serve, f"127.0.0.1:{port}") is None
            served = await tg.start(AgentMetrics().serve, f"127.0.0.1:{free_port()}")
            assert isinstance(served, int)
            tg.cancel_scope.cancel()


async def test_a_failing_scrape_leaves_the_server_running() -> None:
    import anyio

    from agent.metrics import AgentMetrics

    class Flaky(AgentMetrics):
        failures = 1

        def render(self) -> bytes:
            if self.failures:
                self.failures -= 1
                raise RuntimeError("render bug")
            return super().render()

    async with anyio.create_task_group() as tg, httpx.AsyncClient(timeout=5.0) as client:
        port = await tg.start(Flaky().serve, f"127.0.0.1:{free_port()}")
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(f"http://127.0.0.1:{port}/metrics")
        r = await client.get(f"http://127.0.0.1:{port}/metrics")
        assert r.status_code == 200
        assert "sg_agent_beat_duration_seconds" in r.text
        tg.cancel_scope.cancel()
