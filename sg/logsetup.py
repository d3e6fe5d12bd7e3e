"""structlog set-up for the entry points (sg-agent, sgctl, sg-api) only.

Library modules never call this: an application embedding ``sg`` configures
logging its own way.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, TextIO

import structlog

__all__ = ["add_logging_arguments", "configure_logging"]

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def add_logging_arguments(parser: argparse.ArgumentParser, *, default_level: str = "info") -> None:
    """The ``--log-level`` and ``--log-json`` flags of the entry points."""
    parser.add_argument("--log-level", default=default_level, choices=list(LEVELS))
    parser.add_argument("--log-json", action="store_true", default=None, help="JSON logs even on a terminal")


def configure_logging(level: str = "info", *, stream: TextIO | None = None, json: bool | None = None) -> None:
    """JSON lines when ``stream`` is not a terminal (journald), key=value on one."""
    stream = stream or sys.stderr
    as_json = not stream.isatty() if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    _route_stdlib_logging(stream, renderer, shared, LEVELS.get(level, logging.INFO))


def _route_stdlib_logging(stream: TextIO, renderer: Any, shared: list[Any], level: int) -> None:
    """Render records of stdlib-logging libraries (aiozk, asyncpg, uvicorn) like ours,
    so journald gets one format; at warning level at least, as they are chatty."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_sg_handler", False)]:
        root.removeHandler(old)
    handler._sg_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(max(level, logging.WARNING))
