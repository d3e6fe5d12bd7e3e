"""Choose a store or driver class from a URL scheme, through entry points.

Backends register under the entry-point groups ``sg.stores`` and ``sg.drivers``
so that a third party can add one. An entry point may name the extra it needs
(``"sg.store.postgresql:PostgresStore [postgres]"``); when its import fails, the
error says which extra to install.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any
from urllib.parse import urlsplit

from sg.config import redact_url
from sg.errors import ConfigError

__all__ = ["load_backend_class", "scheme_of"]


def scheme_of(url: str, kind: str) -> str:
    """Return the lower-cased scheme of ``url`` or raise :class:`ConfigError`."""
    try:
        scheme = urlsplit(url).scheme
    except ValueError as exc:
        raise ConfigError(f"{kind} URL {redact_url(url)!r} is malformed: {exc}") from exc
    if not scheme:
        raise ConfigError(f"{kind} URL {redact_url(url)!r} has no scheme (like 'sqlite://')")
    return scheme.lower()


def _entry_points(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def load_backend_class(group: str, url: str, kind: str) -> Any:
    """Return the class registered in ``group`` for the scheme of ``url``."""
    scheme = scheme_of(url, kind)
    available = _entry_points(group)
    ep = available.get(scheme)
    if ep is None:
        known = ", ".join(sorted(available)) or "none (is servicegroup installed?)"
        raise ConfigError(f"unknown {kind} scheme {scheme!r} in {redact_url(url)!r}; known: {known}")
    return load_entry_point(ep, kind)


def load_entry_point(ep: EntryPoint, kind: str) -> Any:
    """Load one backend entry point, naming the missing extra if its import fails."""
    scheme = ep.name
    try:
        return ep.load()
    except ImportError as exc:
        extra = ",".join(ep.extras) if ep.extras else None
        hint = f"pip install 'servicegroup[{extra}]'" if extra else "check the installation"
        raise ConfigError(
            f"{kind} scheme {scheme!r} needs a package that is not installed ({exc.name or exc}): {hint}"
        ) from exc
