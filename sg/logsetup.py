"""structlog set-up for the entry points (sg-agent, sgctl, sg-api) only.

Library modules never call this: an application embedding ``sg`` configures
logging its own way.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, TextIO

from sg.lazylog import load_structlog, when_structlog_loaded

__all__ = ["add_logging_arguments", "configure_logging"]

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def add_logging_arguments(parser: argparse.ArgumentParser, *, default_level: str = "info") -> None:
    """The ``--log-level`` and ``--log-json`` flags of the entry points."""
    parser.add_argument("--log-level", default=default_level, choices=list(LEVELS))
    parser.add_argument("--log-json", action="store_true", default=None, help="JSON logs even on a terminal")


def configure_logging(
    level: str = "info", *, stream: TextIO | None = None, json: bool | None = None, deferred: bool = False
) -> None:
    """JSON lines when ``stream`` is not a terminal (journald), key=value on one.

    ``deferred`` (sgctl): when structlog is not imported yet, configure it only when
    the first ``sg`` logger or stdlib log record needs it, so that a command that logs
    nothing never imports structlog. Only for a process whose structlog events all
    come from ``sg`` loggers (:mod:`sg.lazylog`).
    """
    stream = stream or sys.stderr
    as_json = not stream.isatty() if json is None else json
    if deferred and "structlog" not in sys.modules:
        numeric = LEVELS.get(level, logging.INFO)
        _install_root_handler(_DeferredHandler(stream), numeric)
        when_structlog_loaded(lambda: _configure(level, stream, as_json))
        return
    _configure(level, stream, as_json)


class _DeferredHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Until structlog is configured: the first stdlib record configures it (which
    replaces this handler with the real one) and is then handled by the real one."""

    def emit(self, record: logging.LogRecord) -> None:
        load_structlog()  # runs the deferred configuration
        for handler in logging.getLogger().handlers:
            if handler is not self and getattr(handler, "_sg_handler", False):
                handler.handle(record)


def _configure(level: str, stream: TextIO, as_json: bool) -> None:
    import structlog

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
    import structlog

    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    _install_root_handler(handler, level)


def _install_root_handler(handler: logging.Handler, level: int) -> None:
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_sg_handler", False)]:
        root.removeHandler(old)
    handler._sg_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(max(level, logging.WARNING))
