"""Personal API tokens: shown once at creation, stored only as a SHA-256 hash.

A token is 32 random bytes, so a fast hash is enough (no password stretching needed); the hash is
unique, which makes a lookup one indexed query.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from entrasync.errors import NotFoundError, ValidationError
from entrasync.services.context import AppContext

PREFIX = "es_"
MAX_TOKENS_PER_PERSON = 20


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(ctx: AppContext, org_id: int, person_id: int, name: str) -> tuple[dict[str, Any], str]:
    """Create a token; returns its public record and the token itself (never retrievable again)."""
    name = (name or "").strip()
    if not name or len(name) > 100 or any(ord(ch) < 32 for ch in name):
        raise ValidationError({"name": "Give the token a name of 1 to 100 characters."})
    token = PREFIX + secrets.token_urlsafe(32)
    now = ctx.now()
    with ctx.write() as uow:
        if uow.auth.count_tokens(org_id, person_id) >= MAX_TOKENS_PER_PERSON:
            raise ValidationError({"name": f"You have {MAX_TOKENS_PER_PERSON} tokens; delete one first."})
        token_id = uow.auth.add_token(org_id, person_id, name, _hash(token), now)
    return {"id": token_id, "name": name, "created_at": now, "last_used_at": None}, token


def list_for(ctx: AppContext, org_id: int, person_id: int) -> list[dict[str, Any]]:
    with ctx.read() as uow:
        return uow.auth.tokens(org_id, person_id)


def delete(ctx: AppContext, org_id: int, person_id: int, token_id: int) -> None:
    with ctx.write() as uow:
        if not uow.auth.delete_token(org_id, person_id, token_id):
            raise NotFoundError(f"No API token {token_id}.")


def resolve(ctx: AppContext, token: str) -> tuple[int, int] | None:
    """The (org id, person id) a token belongs to, or None; records when it was last used."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    with ctx.write() as uow:
        return uow.auth.use_token(_hash(token), ctx.now())
