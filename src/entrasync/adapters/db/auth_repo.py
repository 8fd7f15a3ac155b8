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

    def count_tokens(self, org_id: int, person_id: int) -> int:
        a = t.api_tokens
        return int(
            self.conn.execute(
                sa.select(sa.func.count()).select_from(a).where(a.c.org_id == org_id, a.c.person_id == person_id)
            ).scalar_one()
        )

    def add_token(self, org_id: int, person_id: int, name: str, token_hash: str, now: datetime) -> int:
        pk = self.conn.execute(
            sa.insert(t.api_tokens).values(
                org_id=org_id, person_id=person_id, name=name, token_hash=token_hash, created_at=now
            )
        ).inserted_primary_key
        assert pk is not None
        return int(pk[0])

    def tokens(self, org_id: int, person_id: int) -> list[dict[str, Any]]:
        a = t.api_tokens
        rows = self.conn.execute(
            sa.select(a.c.id, a.c.name, a.c.created_at, a.c.last_used_at)
            .where(a.c.org_id == org_id, a.c.person_id == person_id)
            .order_by(a.c.id)
        )
        return [dict(r._mapping) for r in rows]

    def delete_token(self, org_id: int, person_id: int, token_id: int) -> bool:
        a = t.api_tokens
        res = self.conn.execute(
            sa.delete(a).where(a.c.id == token_id, a.c.org_id == org_id, a.c.person_id == person_id)
        )
        return bool(res.rowcount)

    def use_token(self, token_hash: str, now: datetime) -> tuple[int, int] | None:
        """(org id, person id) of the token with this hash, recording when it was last used."""
        a = t.api_tokens
        row = self.conn.execute(
            sa.select(a.c.id, a.c.org_id, a.c.person_id).where(a.c.token_hash == token_hash)
        ).first()
        if row is None:
            return None
        self.conn.execute(sa.update(a).where(a.c.id == row[0]).values(last_used_at=now))
        return int(row[1]), int(row[2])
