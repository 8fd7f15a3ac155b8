"""Opaque page and delta tokens: URL-safe base64 of a small JSON state, tamper-evident with an HMAC.

The token carries every query option of the first request (and whether it was an advanced query),
so a nextLink followed verbatim reproduces the query without the client resending it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson


class BadToken(ValueError):
    """The token is not one this emulator issued."""


class TokenCodec:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def encode(self, state: dict[str, Any]) -> str:
        body = orjson.dumps(state)
        mac = hmac.new(self._secret, body, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(mac + body).decode().rstrip("=")

    def decode(self, token: str) -> dict[str, Any]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError) as exc:
            raise BadToken(token) from exc
        mac, body = raw[:12], raw[12:]
        if len(raw) < 13 or not hmac.compare_digest(mac, hmac.new(self._secret, body, hashlib.sha256).digest()[:12]):
            raise BadToken(token)
        try:
            state = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadToken(token) from exc
        if not isinstance(state, dict):
            raise BadToken(token)
        return state
