"""The library's loggers, with structlog imported on first use.

Importing structlog pulls in the stdlib's logging set-up, its dev renderer and,
where installed, rich and pygments: about half of a cold ``sgctl service list``,
which logs nothing. Every ``sg`` module takes its logger from :func:`get_logger`
instead of ``structlog.get_logger``; the events are the same structlog key=value
events, rendered by whatever the application (or :mod:`sg.logsetup`) configured.
Nothing here configures logging.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

__all__ = ["LazyLogger", "get_logger", "load_structlog", "when_structlog_loaded"]

#: Work waiting for structlog (an entry point's deferred configuration), run once,
#: in order, by the first logger used.
_pending: list[Callable[[], None]] = []


def when_structlog_loaded(fn: Callable[[], None]) -> None:
    """Run ``fn`` now if structlog is imported, else just before the first ``sg``
    logger is used (so a deferred configuration is in place before any event)."""
    if "structlog" in sys.modules:
        fn()
    else:
        _pending.append(fn)


def load_structlog() -> Any:
    """Import structlog, run the work waiting for it, and return the module."""
    import structlog

    while _pending:
        _pending.pop(0)()
    return structlog


class LazyLogger:
    """A stand-in for ``structlog.get_logger(name)`` that imports structlog when an
    attribute (``info``, ``bind``, ...) is first read, then delegates to it.

    The logger it delegates to is structlog's own lazy proxy, which reads the
    configuration at each use: ``structlog.testing.capture_logs`` and a later
    ``structlog.configure`` apply to it as they do to a plain structlog logger.
    """

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        logger = self._logger
        if logger is None:
            logger = self._logger = load_structlog().get_logger(self._name)
        return getattr(logger, attr)

    def __repr__(self) -> str:
        return f"<LazyLogger {self._name!r}>"


def get_logger(name: str) -> Any:
    """The logger of ``name`` (an ``sg`` module): structlog's, once it is used.

    Typed ``Any`` as ``structlog.get_logger`` is: its methods depend on the configuration.
    """
    return LazyLogger(name)
