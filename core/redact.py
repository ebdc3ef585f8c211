"""Credentials never shown: URLs, settings and error texts with their secrets masked.

One place decides what a credential looks like, so every message that reaches a page, the CLI or a
log names the server (scheme, host, port, path) without the user:password part or a token in its
query string.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "••••••"
# Setting names whose whole value is a secret.
_SECRET_NAMES = ("PASSWORD", "SECRET", "TOKEN", "KEY")
# Query parameters that carry credentials in URLs (Prometheus-compatible gateways, presigned links).
_SECRET_PARAMS = re.compile(r"(?i)^(password|passwd|pwd|token|access_token|api_key|apikey|secret|key|signature|sig)$")
# user:password@ (or a bare token@) in any URL inside free text.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/@\s]+)@")


def url(value: str) -> str:
    """``value`` with its password (and any credential query parameter) masked; the user name stays
    so a person can tell which account is used. Text that is not a URL is returned unchanged."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return text(value)
    if not parts.scheme or not parts.netloc:
        return text(value)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    query = "&".join(
        f"{item.partition('=')[0]}={MASK}" if _SECRET_PARAMS.match(item.partition("=")[0]) else item
        for item in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def text(value: str) -> str:
    """Free text (an error message, a log line) with the credentials of every URL in it masked."""
    return _USERINFO.sub(lambda m: m.group("scheme") + (
        m.group("userinfo").split(":", 1)[0] + ":" + MASK if ":" in m.group("userinfo") else MASK) + "@", value)


def setting(name: str, value: str) -> str:
    """How a setting's value is shown: secrets masked whole, URLs (and ``cluster=url`` lists) with
    their credentials masked, anything else as it is."""
    if not value:
        return value
    if any(word in name.upper() for word in _SECRET_NAMES):
        return MASK
    if "://" in value:
        return ",".join(_pair(item) for item in value.split(","))
    return value


def _pair(item: str) -> str:
    name, sep, rest = item.partition("=")
    if sep and "://" in rest and "://" not in name:
        return f"{name}={url(rest.strip())}"
    return url(item.strip())
