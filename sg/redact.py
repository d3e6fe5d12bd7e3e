"""Make URLs safe to print or log: passwords and secret options become ``***``."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["SECRET_QUERY_KEYS", "redact_url"]

#: Query options whose values are secrets (``auth=digest:user:SECRET`` keeps its
#: scheme and user, the rest is masked whole).
SECRET_QUERY_KEYS = frozenset({"auth", "password", "secret", "token"})


def _redact_query(query: str) -> str:
    pairs = []
    for item in query.split("&"):
        name, eq, value = item.partition("=")
        if eq and name.lower() in SECRET_QUERY_KEYS:
            head = value.split(":")
            value = ":".join([*head[:2], "***"]) if name.lower() == "auth" and len(head) > 2 else "***"
        pairs.append(f"{name}{eq}{value}")
    return "&".join(pairs)


def redact_url(url: str) -> str:
    """Return ``url`` with any password (in the netloc, or a secret query option such
    as ``auth=digest:user:secret``) replaced by ``***``, safe to print or log."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.query:
        parts = parts._replace(query=_redact_query(parts.query))
    if parts.password is None:
        return urlunsplit(parts) if parts.query else url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
