"""``sg-api``: the os-services REST interface, over :class:`~sg.group.ServiceGroup` alone.

Shapes follow Nova's os-services so operators recognise them. Every answer is
JSON; errors are ``{"error": {"code", "message", "field"?}}`` and never a
traceback. Changes need a bearer token, reads too unless ``[api] open_reads``.

Run it with ``sg-api [--config FILE] [--listen HOST:PORT]`` (or ``python -m sg.api``),
or serve :func:`sg.api.app.create_app` with any ASGI server.

This package imports nothing at import time: :mod:`sg.config` reads the ``[api]``
table through :mod:`sg.api.settings`, which must work without the ``api`` extra
(Starlette, uvicorn, prometheus-client) installed.
"""
