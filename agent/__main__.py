"""``sg-agent [--config FILE]``: run the host daemon in the foreground."""

from __future__ import annotations

import argparse
import sys

import anyio
import structlog

from agent.daemon import Agent
from sg.config import load_settings
from sg.errors import ConfigError
from sg.logsetup import configure_logging

#: sysexits.h EX_CONFIG
EXIT_CONFIG = 78


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line flags."""
    parser = argparse.ArgumentParser(prog="sg-agent", description="Report this host's services as alive.")
    parser.add_argument(
        "--config",
        help="TOML config file (default: $SG_CONFIG, ./servicegroup.toml, "
        "/etc/servicegroup/servicegroup.toml)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-json", action="store_true", default=None, help="JSON logs even on a terminal")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``sg-agent``; returns the exit status."""
    args = parse_args(argv)
    configure_logging(args.log_level, json=args.log_json)
    log = structlog.get_logger("agent")
    try:
        settings = load_settings(args.config)
        agent = Agent(settings)
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
