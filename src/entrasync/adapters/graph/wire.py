"""How requests to Graph and Graph's answers look on the wire: query strings as Graph's examples write
them, the error envelope, and the origin check that keeps the bearer token on the configured host."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlsplit

import orjson

_QUERY_SAFE = "$,'():@/*!~"


def encode_query(params: Mapping[str, str | int | bool]) -> str:
    """``$select=a,b&$filter=x eq 'y'`` encoded the way Graph's examples are written.

    ``$``, ``,``, ``'``, ``(``, ``)`` and ``:`` stay readable; spaces become ``%20`` and ``+``/``&``/``#``
    inside values are escaped so that they reach Graph as data, not syntax.
    """
    parts = []
    for key, value in params.items():
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        parts.append(quote(key, safe="$") + "=" + quote(text, safe=_QUERY_SAFE))
    return "&".join(parts)


def error_envelope(body: bytes) -> tuple[str, str, str | None]:
    """(code, message, request-id) from Graph's ``{"error": {...}}``; tolerant of garbage."""
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        err = data["error"]
        inner = err.get("innerError") or err.get("innererror") or {}
        request_id = inner.get("request-id") if isinstance(inner, dict) else None
        return str(err.get("code") or ""), str(err.get("message") or ""), request_id
    return "", "", None


def describe(code: str | None, message: str | None) -> str:
    if code and message:
        return f" ({code}: {message})"
    if code or message:
        return f" ({code or message})"
    return ""


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def origin_of(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, ("loopback" if host in _LOOPBACK else host), port


def path_of(url: str) -> str:
    """URL path for logs: no query string (it may be long) and never credentials."""
    return urlsplit(url).path
