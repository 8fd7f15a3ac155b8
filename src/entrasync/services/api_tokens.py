"""Personal API tokens (spec §7 "REST API"): scoped (read, write, admin), expiring, revocable; shown
once at creation and stored only as a SHA-256 hash.

A token is 32 random bytes, so a fast hash is enough (no password stretching needed); the hash is
unique, which makes a look-up one indexed query. A token acts as its owner within its scopes: the
owner's role still decides what they may do, the scopes only narrow it (``domain.states.TokenScope``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from entrasync.domain.states import TokenScope
from entrasync.errors import NotFoundError, ValidationError
from entrasync.services import paging
from entrasync.services.context import AppContext

PREFIX = "es_"
MAX_TOKENS_PER_PERSON = 20
DEFAULT_DAYS = 90
MAX_DAYS = 366
KIND = "tokens"


@dataclass(frozen=True, slots=True)
class TokenOwner:
    org_id: int
    person_id: int
    scopes: frozenset[TokenScope]


class TokenRefusedError(Exception):
    """The token exists but no longer works (revoked or expired): the sentence says which and what to do."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scopes(values: list[str] | tuple[str, ...] | None) -> list[str]:
    """Scopes as stored: known names, each implying the ones below it (admin -> write -> read)."""
    names = list(values or [TokenScope.READ.value])
    known = {s.value for s in TokenScope}
    if not names or set(names) - known:
        raise ValidationError({"scopes": "Scopes are read, write and admin."})
    top = max((TokenScope(n) for n in names), key=lambda s: list(TokenScope).index(s))
    return [s.value for s in TokenScope if top.allows(s)]


def status_of(record: dict[str, Any], now: datetime) -> str:
    if record.get("revoked_at") is not None:
        return "revoked"
    expires = record.get("expires_at")
    return "expired" if expires is not None and expires <= now else "active"


def _public(record: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {**record, "scopes": list(record.get("scopes") or []), "status": status_of(record, now)}


def create(
    ctx: AppContext,
    org_id: int,
    person_id: int,
    name: str,
    *,
    scopes: list[str] | None = None,
    expires_in_days: int = DEFAULT_DAYS,
) -> tuple[dict[str, Any], str]:
    """Create a token; returns its public record and the token itself (never retrievable again)."""
    name = (name or "").strip()
    if not name or len(name) > 100 or any(ord(ch) < 32 for ch in name):
        raise ValidationError({"name": "Give the token a name of 1 to 100 characters."})
    if not isinstance(expires_in_days, int) or not 1 <= expires_in_days <= MAX_DAYS:
        raise ValidationError({"expires_in_days": f"A token expires after 1 to {MAX_DAYS} days."})
    stored = parse_scopes(scopes)
    token = PREFIX + secrets.token_urlsafe(32)
    now = ctx.now()
    expires_at = now + timedelta(days=expires_in_days)
    with ctx.write() as uow:
        if uow.auth.count_tokens(org_id, person_id, now) >= MAX_TOKENS_PER_PERSON:
            raise ValidationError({"name": f"You have {MAX_TOKENS_PER_PERSON} tokens; revoke one first."})
        token_id = uow.auth.add_token(org_id, person_id, name, _hash(token), now, scopes=stored, expires_at=expires_at)
    record = {"id": token_id, "name": name, "scopes": stored, "created_at": now, "last_used_at": None,
              "expires_at": expires_at, "revoked_at": None}  # fmt: skip
    return _public(record, now), token


def list_for(ctx: AppContext, org_id: int, person_id: int) -> list[dict[str, Any]]:
    now = ctx.now()
    with ctx.read() as uow:
        return [_public(r, now) for r in uow.auth.tokens(org_id, person_id)]


def page_for(ctx: AppContext, org_id: int, person_id: int, *, after: str | None, limit: int) -> paging.CursorPage:
    now = ctx.now()
    limit = paging.limit_of(limit)
    with ctx.read() as uow:
        rows = uow.auth.tokens(org_id, person_id, after_id=paging.decode_id(KIND, after) or 0, limit=limit + 1)
    return paging.page_of(KIND, [_public(r, now) for r in rows], limit)


def revoke(ctx: AppContext, org_id: int, person_id: int, token_id: int) -> None:
    with ctx.write() as uow:
        if not uow.auth.revoke_token(org_id, person_id, token_id, ctx.now()):
            raise NotFoundError(f"No API token {token_id}.")


def resolve(ctx: AppContext, token: str) -> TokenOwner | None:
    """Whose token this is and what it may do; None for no such token; TokenRefusedError when it
    exists but was revoked or has expired. Records when it was last used."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    now = ctx.now()
    with ctx.write() as uow:
        found = uow.auth.use_token(_hash(token), now)
    if found is None:
        return None
    if found["revoked_at"] is not None:
        raise TokenRefusedError(
            "The API token was revoked. Create a new one on My settings or with `entrasync tokens create`."
        )
    if found["expires_at"] is not None and found["expires_at"] <= now:
        raise TokenRefusedError(
            f"The API token expired on {found['expires_at']:%Y-%m-%d}. Create a new one on My settings or with "
            "`entrasync tokens create`."
        )
    scopes = frozenset(TokenScope(s) for s in found["scopes"] or () if s in {x.value for x in TokenScope})
    return TokenOwner(int(found["org_id"]), int(found["person_id"]), scopes)
