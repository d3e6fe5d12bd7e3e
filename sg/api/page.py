"""The status page: ``GET /`` and its three static assets under ``/static/``.

The page (``static/index.html``, ``app.js``, ``style.css``) needs no build step and
loads nothing from elsewhere; its data comes from ``GET /v1/events``
(:mod:`sg.api.events`). Open to all: the page holds no data until the event stream,
which checks the token, answers. Only the files named in :data:`ASSETS` are served,
so no path from a request ever reaches the file system.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from sg.api.errors import ApiError

__all__ = ["ASSETS", "CSP", "STATIC_DIR", "asset", "index"]

STATIC_DIR = Path(__file__).resolve().parent / "static"

#: The assets the page loads, by name, with their media types.
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}

#: The page's own policy, also sent as a header (the HTML carries it in a meta tag):
#: this server only, no inline code, no framing.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


async def index(request: Request) -> Response:
    """``GET /``: the page; revalidated on every load, so an upgrade shows at once."""
    return FileResponse(
        STATIC_DIR / "index.html",
        media_type="text/html; charset=utf-8",
        headers={**_HEADERS, "Content-Security-Policy": CSP},
    )


async def asset(request: Request) -> Response:
    """``GET /static/{name}``: one of :data:`ASSETS`, else 404."""
    name = request.path_params["name"]
    media_type = ASSETS.get(name)
    if media_type is None:
        raise ApiError(404, f"no such asset (known: {', '.join(sorted(ASSETS))})", field="name")
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=_HEADERS)
