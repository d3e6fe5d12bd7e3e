"""The status page's routes: ``GET /`` and its static assets under ``/static/``.

The page (``static/index.html``, ``app.js``, ``style.css``) needs no build step and
loads nothing from elsewhere; its data comes from ``GET /v1/events``
(:mod:`sg.api.events`). Open to all: the page holds no data until the event stream,
which checks the token, answers.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

__all__ = ["STATIC_DIR", "page_routes"]

STATIC_DIR = Path(__file__).resolve().parent / "static"

#: The page's own policy, also sent as a header (the HTML carries it in a meta tag):
#: this server only, no inline code, no framing.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


async def index(request: Request) -> Response:
    """``GET /``: the page; revalidated on every load, so an upgrade shows at once."""
    return FileResponse(
        STATIC_DIR / "index.html",
        headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
        },
    )


def page_routes() -> list[BaseRoute]:
    """``/`` and ``/static/*``, to add to sg-api's route table."""
    return [
        Route("/", index, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
