"""``sg-api`` (and ``python -m sg.api``): serve the REST API with uvicorn."""

from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import replace
from types import FrameType

from sg.api.app import create_app
from sg.api.settings import api_settings
from sg.config import add_config_argument, load_settings, parse_listen
from sg.errors import ConfigError
from sg.lazylog import get_logger
from sg.logsetup import add_logging_arguments, configure_logging
from sg.redact import redact_url

__all__ = ["EXIT_CONFIG", "main", "parse_args"]

log = get_logger("sg.api")

#: sysexits.h EX_CONFIG, as sg-agent and sgctl.
EXIT_CONFIG = 78


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line flags."""
    parser = argparse.ArgumentParser(prog="sg-api", description="Serve the servicegroup REST API.")
    add_config_argument(parser)
    parser.add_argument("--listen", help="HOST:PORT to listen on (default: [api] listen, 127.0.0.1:8775)")
    add_logging_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``sg-api``; returns the exit status (78 on a configuration error)."""
    import uvicorn

    args = parse_args(argv)
    configure_logging(args.log_level, json=args.log_json)
    try:
        settings = load_settings(args.config)
        api = api_settings(settings)
        if args.listen:
            api = replace(api, listen=args.listen)
        host, port = parse_listen(api.listen, "listen")
        app = create_app(settings, api)
    except ConfigError as exc:
        log.error("configuration_error", error=str(exc))
        return EXIT_CONFIG
    if not api.tokens:
        log.warning("api_no_tokens", detail="no [api] tokens and no SG_API_TOKEN: every change is refused")
    if host not in ("127.0.0.1", "::1", "localhost"):
        log.warning("api_not_on_loopback", host=host, detail="put TLS in front of it")
    log.info(
        "api_starting",
        listen=f"{host}:{port}",
        store=redact_url(settings.store),
        driver=redact_url(settings.driver),
        tokens=len(api.tokens),
        open_reads=api.open_reads,
    )
    # uvicorn's own access log is off: the middleware logs each request with its
    # route template, never its headers (which carry the token).
    config = uvicorn.Config(app, host=host, port=port, access_log=False, log_config=None, server_header=False)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            log.info("api_stopping", signal=signal.Signals(sig).name)
            super().handle_exit(sig, frame)
            # uvicorn re-raises the signal after its graceful shutdown, so the exit
            # status would be -15; a clean stop exits 0, as sg-agent does.
            self._captured_signals.clear()

    server = Server(config)
    try:
        server.run()
    except SystemExit:
        # uvicorn exits on a failed start-up; a refused configuration is ours to report.
        if getattr(app.state, "config_error", None) is None:
            raise
    if getattr(app.state, "config_error", None) is not None:
        return EXIT_CONFIG
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
