"""Personal API tokens: shown once at creation, stored only as a SHA-256 hash.

A token is 32 random bytes, so a fast hash is enough (no password stretching needed); the hash is
unique, which makes a lookup one indexed query.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import sqlalchemy as sa

from entrasync.adapters.db import tables as t
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
    with ctx.engine.begin() as conn:
        count = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.api_tokens)
            .where(t.api_tokens.c.org_id == org_id, t.api_tokens.c.person_id == person_id)
        ).scalar_one()
        if count >= MAX_TOKENS_PER_PERSON:
            raise ValidationError({"name": f"You have {MAX_TOKENS_PER_PERSON} tokens; delete one first."})
        pk = conn.execute(
            sa.insert(t.api_tokens).values(
                org_id=org_id, person_id=person_id, name=name, token_hash=_hash(token), created_at=now
            )
        ).inserted_primary_key
        assert pk is not None
    return {"id": int(pk[0]), "name": name, "created_at": now, "last_used_at": None}, token


def list_for(ctx: AppContext, org_id: int, person_id: int) -> list[dict[str, Any]]:
    a = t.api_tokens
    with ctx.reader.connect() as conn:
        rows = conn.execute(
            sa.select(a.c.id, a.c.name, a.c.created_at, a.c.last_used_at)
            .where(a.c.org_id == org_id, a.c.person_id == person_id)
            .order_by(a.c.id)
        )
        return [dict(r._mapping) for r in rows]


def delete(ctx: AppContext, org_id: int, person_id: int, token_id: int) -> None:
    a = t.api_tokens
    with ctx.engine.begin() as conn:
        res = conn.execute(sa.delete(a).where(a.c.id == token_id, a.c.org_id == org_id, a.c.person_id == person_id))
        if res.rowcount == 0:
            raise NotFoundError(f"No API token {token_id}.")


def resolve(ctx: AppContext, token: str) -> tuple[int, int] | None:
    """The (org id, person id) a token belongs to, or None; records when it was last used."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    a = t.api_tokens
    digest = _hash(token)
    with ctx.engine.begin() as conn:
        row = conn.execute(sa.select(a.c.id, a.c.org_id, a.c.person_id).where(a.c.token_hash == digest)).first()
        if row is None:
            return None
        conn.execute(sa.update(a).where(a.c.id == row[0]).values(last_used_at=ctx.now()))
        return int(row[1]), int(row[2])
