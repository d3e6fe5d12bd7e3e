"""Make URLs safe to print or log: passwords and secret options become ``***``."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["SECRET_QUERY_KEYS", "password_misparsed", "redact_url", "urlsplit_password"]

#: Query options whose values are secrets (``auth=digest:user:SECRET`` keeps its
#: scheme and user, the rest is masked whole).
SECRET_QUERY_KEYS = frozenset({"auth", "password", "secret", "token"})


def urlsplit_password(url: str) -> str | None:
    """The password ``urlsplit`` sees in ``url`` (``None`` if none or unparseable)."""
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def _redact_query(query: str) -> str:
    pairs = []
    for item in query.split("&"):
        name, eq, value = item.partition("=")
        if eq and name.lower() in SECRET_QUERY_KEYS:
            head = value.split(":")
            value = ":".join([*head[:2], "***"]) if name.lower() == "auth" and len(head) > 2 else "***"
        pairs.append(f"{name}{eq}{value}")
    return "&".join(pairs)


def _redact_raw_userinfo(url: str) -> str | None:
    """A password holding ``#``, ``?`` or ``/`` ends the netloc early for ``urlsplit``,
    which then sees no password at all. Read the userinfo as everything up to the last
    ``@`` instead, and mask from its first ``:``: this may mask more than the password
    (an ``@`` later in the URL), never less."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at:
        return None
    user, colon, _ = userinfo.partition(":")
    if not colon:
        return None
    return f"{scheme}://{user}:***@{host}"


def password_misparsed(url: str) -> bool:
    """Whether ``url`` seems to hold a password that ``urlsplit`` cannot see (one with
    ``#``, ``?`` or ``/`` in it, not percent-encoded): then a "host" or "port" read from
    it is really part of the password, and must not be echoed."""
    return _redact_raw_userinfo(url) is not None and not _userinfo_agrees(url)


def _userinfo_agrees(url: str) -> bool:
    """Whether ``urlsplit`` reads the same userinfo as :func:`_redact_raw_userinfo` (all
    up to the last ``@``): it does not when the password holds ``#``, ``?``, ``/`` or
    when an ``@`` follows them."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return False
    return netloc.rpartition("@")[0] == url.partition("://")[2].rpartition("@")[0]


def redact_url(url: str) -> str:
    """Return ``url`` with any password (in the netloc, or a secret query option such
    as ``auth=digest:user:secret``) replaced by ``***``, safe to print or log."""
    raw = _redact_raw_userinfo(url)
    if raw is not None and not _userinfo_agrees(url):
        url = raw
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
