"""Sign-in bookkeeping shared by every web process: revoked sessions, failed sign-ins, API tokens."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t


class AuthRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- sessions revoked at sign-out ------------------------------------------------------------

    def revoke_session(self, sid: str, expires_at: datetime, now: datetime) -> None:
        rs = t.revoked_sessions
        self.conn.execute(sa.delete(rs).where(rs.c.expires_at < now))
        if self.conn.execute(sa.select(rs.c.sid).where(rs.c.sid == sid)).first() is None:
            self.conn.execute(sa.insert(rs).values(sid=sid, expires_at=expires_at))

    def session_revoked(self, sid: str) -> bool:
        rs = t.revoked_sessions
        return self.conn.execute(sa.select(rs.c.sid).where(rs.c.sid == sid)).first() is not None

    # -- failed sign-ins -------------------------------------------------------------------------

    def failures_since(self, keys: Iterable[str], since: datetime) -> dict[str, int]:
        f = t.sign_in_failures
        return dict(
            self.conn.execute(
                sa.select(f.c.key, sa.func.count()).where(f.c.key.in_(list(keys)), f.c.at > since).group_by(f.c.key)
            ).all()
        )

    def add_failures(self, keys: Iterable[str], now: datetime, prune_before: datetime) -> None:
        f = t.sign_in_failures
        self.conn.execute(sa.delete(f).where(f.c.at <= prune_before))
        self.conn.execute(sa.insert(f), [{"key": key, "at": now} for key in keys])

    def clear_failures(self, key: str) -> None:
        f = t.sign_in_failures
        self.conn.execute(sa.delete(f).where(f.c.key == key))

    # -- personal API tokens ---------------------------------------------------------------------

    def count_tokens(self, org_id: int, person_id: int, now: datetime) -> int:
        """Tokens that still work (not revoked, not expired)."""
        a = t.api_tokens
        live = sa.or_(a.c.expires_at.is_(None), a.c.expires_at > now)
        return int(
            self.conn.execute(
                sa.select(sa.func.count())
                .select_from(a)
                .where(a.c.org_id == org_id, a.c.person_id == person_id, a.c.revoked_at.is_(None), live)
            ).scalar_one()
        )

    def add_token(self, org_id: int, person_id: int, name: str, token_hash: str, now: datetime, *,
                  scopes: list[str], expires_at: datetime | None) -> int:  # fmt: skip
        pk = self.conn.execute(
            sa.insert(t.api_tokens).values(
                org_id=org_id,
                person_id=person_id,
                name=name,
                token_hash=token_hash,
                created_at=now,
                scopes=scopes,
                expires_at=expires_at,
            )
        ).inserted_primary_key
        assert pk is not None
        return int(pk[0])

    def tokens(self, org_id: int, person_id: int, *, after_id: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        a = t.api_tokens
        rows = self.conn.execute(
            sa.select(a.c.id, a.c.name, a.c.scopes, a.c.created_at, a.c.last_used_at, a.c.expires_at, a.c.revoked_at)
            .where(a.c.org_id == org_id, a.c.person_id == person_id, a.c.id > after_id)
            .order_by(a.c.id)
            .limit(limit)
        )
        return [dict(r._mapping) for r in rows]

    def revoke_token(self, org_id: int, person_id: int, token_id: int, now: datetime) -> bool:
        """Revoke a token (kept, so the list shows it); False when the person has no such token."""
        a = t.api_tokens
        mine = sa.and_(a.c.id == token_id, a.c.org_id == org_id, a.c.person_id == person_id)
        if self.conn.execute(sa.select(a.c.id).where(mine)).first() is None:
            return False
        self.conn.execute(sa.update(a).where(mine, a.c.revoked_at.is_(None)).values(revoked_at=now))
        return True

    def use_token(self, token_hash: str, now: datetime) -> dict[str, Any] | None:
        """The token with this hash (org, person, scopes, expiry, revocation), recording its use if it works."""
        a = t.api_tokens
        row = self.conn.execute(
            sa.select(a.c.id, a.c.org_id, a.c.person_id, a.c.scopes, a.c.expires_at, a.c.revoked_at).where(
                a.c.token_hash == token_hash
            )
        ).first()
        if row is None:
            return None
        found = dict(row._mapping)
        if found["revoked_at"] is None and (found["expires_at"] is None or found["expires_at"] > now):
            self.conn.execute(sa.update(a).where(a.c.id == row[0]).values(last_used_at=now))
        return found
