"""``sg-agent [--config FILE]``: run the host daemon in the foreground."""

from __future__ import annotations

import argparse
import os
import sys
import threading

import anyio
import structlog

from agent.daemon import Agent
from agent.notify import Notifier
from agent.settings import load_agent_settings
from sg.config import add_config_argument
from sg.errors import ConfigError
from sg.logsetup import add_logging_arguments, configure_logging

#: sysexits.h EX_CONFIG
EXIT_CONFIG = 78
#: Seconds from a stop signal to a forced exit, for a backend that hangs even while
#: closing. Under one second, well inside the unit's TimeoutStopSec.
STOP_DEADLINE = 0.9


def _arm_stop_deadline() -> None:
    """Exit 0 after :data:`STOP_DEADLINE` however the clean stop is going.

    Every service has had its bounded chance to leave by then; what is left is a
    backend's close, and nothing the agent owns is lost by skipping it.
    """
    log = structlog.get_logger("agent")

    def expire() -> None:
        log.warning("stop_deadline_reached", deadline_s=STOP_DEADLINE)
        sys.stderr.flush()
        os._exit(0)

    timer = threading.Timer(STOP_DEADLINE, expire)
    timer.daemon = True
    timer.start()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line flags."""
    parser = argparse.ArgumentParser(prog="sg-agent", description="Report this host's services as alive.")
    add_config_argument(parser)
    add_logging_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``sg-agent``; returns the exit status."""
    args = parse_args(argv)
    configure_logging(args.log_level, json=args.log_json)
    log = structlog.get_logger("agent")
    try:
        settings = load_agent_settings(args.config)
        agent = Agent(settings, notifier=Notifier.take_from_environ(), on_stop=_arm_stop_deadline)
    except ConfigError as exc:
        log.error("configuration_error", error=str(exc))
        return EXIT_CONFIG
    try:
        anyio.run(agent.run)
    except ConfigError as exc:
        # For example a database whose schema is newer than this release.
        log.error("configuration_error", error=str(exc))
        return EXIT_CONFIG
    return 0


if __name__ == "__main__":
    sys.exit(main())
