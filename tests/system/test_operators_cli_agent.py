"""The operators' tools in real processes: sg-agent with enable_new_services, a zone and
a damped check that alternates; sgctl service history and prune, with the unix user
recorded as who."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import anyio

from sg import ServiceGroup
from sg.model import Actor
from tests.support.processes import agent, sgctl, sgctl_json, write_config
from tests.support.waiting import eventually

INTERVAL = 0.5
DOWN_TIME = 2.0


def alternating_check(tmp_path: Path) -> tuple[Path, Path]:
    """A script that fails on odd runs and passes on even ones, counting its runs."""
    count = tmp_path / "runs"
    script = tmp_path / "flappy.sh"
    script.write_text(
        "#!/bin/sh\n"
        f'n=$(cat "{count}" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "{count}"\n'
        'test $((n % 2)) -eq 0 || { echo "odd run $n"; exit 1; }\n'
    )
    script.chmod(0o755)
    return script, count


async def test_agent_registers_disabled_in_its_zone_and_a_damped_flapping_check_holds_nothing(
    tmp_path: Path,
) -> None:
    store = f"sqlite://{tmp_path}/services.db"
    script, count = alternating_check(tmp_path)
    config = tmp_path / "agent.toml"
    config.write_text(
        f'store = "{store}"\ndriver = "db://"\nreport_interval = {INTERVAL}\n'
        f"service_down_time = {DOWN_TIME}\nenable_new_services = false\n"
        '[[service]]\nhost = "node-1"\nbinary = "sg-compute"\ntopic = "compute"\nzone = "rack-4"\n'
        f'check = "exec:{script}"\ncheck_timeout = 0.4\n'
        # Three in a row: an alternating check never gets there, even if one run times out.
        "check_fail_after = 3\n"
    )
    async with ServiceGroup.from_urls(store, report_interval=INTERVAL, service_down_time=DOWN_TIME) as group:
        with agent(config, tmp_path / "agent.log"):
            seen: list[str] = []

            async def probe() -> int:
                status = await group.get("node-1", "sg-compute")
                seen.append(status.verdict.reason)
                return int(count.read_text()) if count.exists() else 0

            async def runs() -> int:
                try:
                    return await probe()
                except Exception:  # not registered yet
                    return 0

            await eventually(runs, lambda n: n >= 1, 15, "the agent's first check")
            await eventually(runs, lambda n: n >= 9, 15, "nine runs of the alternating check")
            # It failed on every odd run, yet the service was never held down.
            assert "check_failed" not in seen, seen
            status = await group.get("node-1", "sg-compute")
            assert status.is_up
            service = status.service
            assert (service.zone, service.disabled, service.disabled_reason) == (
                "rack-4",
                True,
                "new service",
            )
            row = sgctl_json("service", "show", "node-1", "sg-compute", config=config)
            assert (row["zone"], row["status"], row["disabled_reason"]) == (
                "rack-4",
                "disabled",
                "new service",
            )


async def test_sgctl_history_and_prune(tmp_path: Path) -> None:
    store = f"sqlite://{tmp_path}/services.db"
    # "live" must never read stale while sgctl processes load the machine: a generous
    # down time; "old" left, so it reads down at once, whatever the down time.
    config = write_config(tmp_path / "sg.toml", store, report_interval=0.5, service_down_time=5.0)
    user = getpass.getuser()
    async with ServiceGroup.from_urls(store, report_interval=0.5, service_down_time=5.0) as group:
        async with group.join("sg-compute", "compute", host="old"):
            pass  # left: down from now on
        async with group.join("sg-compute", "compute", host="live") as live:
            await live.ready.wait()
            for args in (
                ("disable", "live", "sg-compute", "--reason", "kernel upgrade"),
                ("enable", "live", "sg-compute", "--reason", "upgraded"),
                ("force-down", "live", "sg-compute"),
                ("force-down", "--off", "live", "sg-compute"),
            ):
                done = sgctl("service", *args, config=config)
                assert done.returncode == 0, done.stderr
            await group.set_disabled(
                ("live", "sg-compute"), True, "by the library", actor=Actor("lib", "library")
            )
            rows = sgctl_json("service", "history", "live", "sg-compute", config=config)
            assert [(r["action"], r["actor"], r["via"], r["why"]) for r in rows] == [
                ("disable", user, "sgctl", "kernel upgrade"),
                ("enable", user, "sgctl", "upgraded"),
                ("force_down", user, "sgctl", None),
                ("force_up", user, "sgctl", None),
                ("disable", "lib", "library", "by the library"),
            ]
            table = sgctl("service", "history", "live", "sg-compute", config=config).stdout
            assert table.splitlines()[0].split() == ["At", "Action", "Actor", "Via", "Why"]
            assert "kernel upgrade" in table
            missing = sgctl("service", "history", "nobody", "sg-compute", config=config)
            assert missing.returncode == 1
            assert "no service" in missing.stderr

            # Prune: a listing first (nothing changes), then --yes.
            assert sgctl("service", "prune", "--down-for", "7x", config=config).returncode == 2
            with anyio.fail_after(10):
                while True:
                    listed = sgctl_json("service", "prune", "--down-for", "0.5s", config=config)
                    if [r["host"] for r in listed] == ["old"]:
                        break
                    await anyio.sleep(0.1)  # the store's clock has to pass 0.5 s: a poll, not a sync
            text = sgctl("service", "prune", "--down-for", "0.5s", config=config).stdout
            assert "1 services down for longer than 0.5s; --yes deletes them" in text
            assert (await group.get("old", "sg-compute")).service.host == "old"
            done = sgctl("service", "prune", "--down-for", "0.5s", "--yes", "--reason", "gone", config=config)
            assert done.returncode == 0, done.stderr
            assert done.stdout.strip() == "deleted sg-compute on old"
            rows = sgctl_json("service", "history", "old", "sg-compute", config=config)
            assert [(r["action"], r["actor"], r["why"]) for r in rows] == [("prune", user, "gone")]
            hosts = [r["host"] for r in json.loads(sgctl("service", "list", "--json", config=config).stdout)]
            assert hosts == ["live"]
