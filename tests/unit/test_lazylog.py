"""sg's loggers import structlog on first use, and sgctl's deferred logging set-up is
in place before the first event, whether it comes from an sg logger or from a
stdlib-logging library. Each case runs in a fresh interpreter (structlog not imported)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from structlog.testing import capture_logs

from sg.lazylog import get_logger


def _run(code: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stderr.splitlines()]


def test_an_sg_logger_imports_structlog_and_the_deferred_set_up_on_first_use() -> None:
    lines = _run(
        """
        import sys
        from sg.logsetup import configure_logging
        from sg.lazylog import get_logger
        configure_logging("info", stream=sys.stderr, json=True, deferred=True)
        log = get_logger("sg.test")
        assert "structlog" not in sys.modules
        log.debug("too_low", answer=1)
        assert "structlog" in sys.modules
        log.bind(who="me").warning("hello", answer=42)
        """
    )
    (line,) = lines  # the debug event is filtered by the deferred set-up's level
    assert (line["event"], line["answer"], line["who"], line["level"]) == ("hello", 42, "me", "warning")
    assert "timestamp" in line


def test_a_stdlib_record_first_sets_up_structlog_and_is_rendered_like_ours() -> None:
    lines = _run(
        """
        import logging, sys
        from sg.logsetup import configure_logging
        from sg.lazylog import get_logger
        configure_logging("info", stream=sys.stderr, json=True, deferred=True)
        assert "structlog" not in sys.modules
        logging.getLogger("aiosqlite").warning("disk %s", "full")
        assert "structlog" in sys.modules
        logging.getLogger("aiosqlite").info("chatty")  # below the stdlib floor (warning)
        get_logger("sg.test").info("after", n=1)
        """
    )
    assert [(line["event"], line.get("logger")) for line in lines] == [
        ("disk full", "aiosqlite"),
        ("after", None),
    ]
    assert lines[1]["n"] == 1


def test_a_configured_set_up_is_not_deferred_once_structlog_is_loaded() -> None:
    lines = _run(
        """
        import sys, structlog
        from sg.logsetup import configure_logging
        from sg.lazylog import _pending
        configure_logging("info", stream=sys.stderr, json=True, deferred=True)
        assert not _pending
        structlog.get_logger("x").info("direct", k="v")
        """
    )
    assert [(line["event"], line["k"]) for line in lines] == [("direct", "v")]


def test_a_lazy_logger_follows_the_configuration_of_each_use() -> None:
    log = get_logger("sg.test")
    with capture_logs() as first:
        log.info("one", n=1)
    with capture_logs() as second:
        log.warning("two", n=2)
    assert first == [{"event": "one", "n": 1, "log_level": "info"}]
    assert second == [{"event": "two", "n": 2, "log_level": "warning"}]
