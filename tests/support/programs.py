"""Run the three programs (sgctl, sg-agent, sg-api) on a config file, to their exit."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.processes import clean_env, script

#: Exit status of a configuration error (sysexits EX_CONFIG), for all three programs.
EXIT_CONFIG = 78

#: A minimal [[service]] table, so sg-agent has something to run.
SERVICE = '[[service]]\nhost = "h1"\nbinary = "sg-x"\ntopic = "t"\n'

PROGRAMS = ("sgctl", "sg-agent", "sg-api")


def argv_for(program: str, config: Path) -> list[str]:
    """The command line that makes ``program`` read ``config`` and start."""
    if program == "sgctl":
        return [script("sgctl"), "--config", str(config), "service", "list"]
    return [script(program), "--config", str(config)]


def run_program(program: str, config: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``program`` on ``config`` until it exits (a working sg-agent or sg-api would
    not: use only with configurations that must be refused)."""
    return subprocess.run(
        argv_for(program, config), capture_output=True, text=True, timeout=timeout, env=clean_env()
    )
