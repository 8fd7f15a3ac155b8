"""An organisation's Graph access token, kept between processes (adapters.graph.auth.TokenStore).

Every `entrasync refresh` from cron, and every job of a freshly started worker, used to load msal and
ask the identity platform for a token: two requests and ~0.1 s of an unchanged refresh that otherwise
needs 0.05 s (spec §9). The token the last refresh got is kept in the organisation's connection row,
sealed with the deployment's key together with the digest of the credential it was issued for, and
reused until five minutes before it expires. What keeps this safe:

- sealed like the client secret (Fernet under ``ENTRASYNC_SECRET_KEY``), never logged, never shown;
- reused only by a provider holding the same authority, client, credential and scope (the digest);
- a new connection row (connect, a changed secret) starts without one, a disconnect deletes the row,
  and a 401 or 403 from Graph forgets it before asking for a new one;
- a store that cannot read or write (a locked database, a changed secret key) holds nothing: the
  refresh asks the identity platform as before, it never fails because of the store.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from entrasync.services.context import AppContext

log = logging.getLogger(__name__)


Held = tuple[bytes, datetime] | None  # the sealed token and its expiry, as the connection row holds them


class StoredTokens:
    """The token store of one organisation, for the Graph client of its refreshes.

    ``first``: what the connection row held when the caller read it just before (a refresh reads it
    with the credentials), answered by the first ``load`` instead of a read of its own; later loads
    (after a 401 made the client forget it) read the row again.
    """

    def __init__(self, ctx: AppContext, org_id: int, *, first: Held | Literal[False] = False) -> None:
        self._ctx, self._org_id = ctx, org_id
        self._first = first

    @staticmethod
    def held_in(row: Mapping[str, Any] | None) -> Held:
        """The token columns of a connection row (``ConnectionRepo.get``)."""
        sealed, expires_at = (row or {}).get("token_enc"), (row or {}).get("token_expires_at")
        return None if sealed is None or expires_at is None else (bytes(sealed), expires_at)

    def load(self) -> tuple[str, str, float] | None:
        try:
            item, self._first = self._first, False
            if item is False:
                with self._ctx.read() as uow:
                    item = uow.connections.token(self._org_id)
            if item is None:
                return None
            sealed, expires_at = item
            held = orjson.loads(self._ctx.box.open(sealed))
            key, token = held["key"], held["token"]
        except Exception as exc:  # a cache: whatever fails (database, a changed secret key) is a miss
            log.info("the stored Graph token cannot be used (%s); asking for a new one", type(exc).__name__)
            return None
        if not isinstance(key, str) or not isinstance(token, str):
            return None
        return key, token, (expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)).timestamp()

    def save(self, key: str, token: str, expires_at: float) -> None:
        sealed = self._ctx.box.seal(orjson.dumps({"key": key, "token": token}).decode())
        self._write(sealed, datetime.fromtimestamp(expires_at, UTC))

    def forget(self) -> None:
        self._write(None, None)

    def _write(self, sealed: bytes | None, expires_at: datetime | None) -> None:
        self._first = False  # what the row held is not what it holds now
        try:
            with self._ctx.write() as uow:
                uow.connections.save_token(self._org_id, sealed, expires_at)
        except Exception as exc:  # not kept: the next process asks the identity platform again
            log.info("the Graph token could not be stored (%s)", type(exc).__name__)
