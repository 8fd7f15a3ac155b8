"""Encryption of stored secrets (client secret, certificate) with a key derived from the secret key."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from entrasync.errors import ConfigurationError


class SecretBox:
    """Fernet (AES-128-CBC + HMAC-SHA256) keyed from ``ENTRASYNC_SECRET_KEY``.

    The key is stretched with a fixed-label SHA-256 so any string can serve as the secret key.
    """

    def __init__(self, secret_key: str) -> None:
        digest = hashlib.sha256(b"entrasync:secretbox:v1:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def open(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken as exc:
            raise ConfigurationError(
                "A stored secret cannot be decrypted: ENTRASYNC_SECRET_KEY differs from the key it was "
                "saved with. Restore the old key, or disconnect and connect again."
            ) from exc


def mask(secret: str | None) -> str:
    """What the UI and CLI may show of a secret: never more than its last 3 characters."""
    if not secret:
        return ""
    return "••••" + secret[-3:] if len(secret) > 8 else "••••"
