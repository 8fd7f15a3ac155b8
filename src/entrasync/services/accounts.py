"""Local sign-in accounts: the bootstrap admin and others, passwords hashed with argon2."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from entrasync.adapters.db import tables as t
from entrasync.domain.model import Role
from entrasync.errors import ValidationError
from entrasync.services import audit, people
from entrasync.services.audit import AuditEntry
from entrasync.services.context import Actor, AppContext, lock_org

_hasher = PasswordHasher()
MIN_PASSWORD = 12
# A fixed hash so a sign-in for an unknown e-mail costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("entrasync-dummy-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def create_admin(
    ctx: AppContext, org_id: int, actor: Actor, *, email: str, name: str, password: str, roles: list[str]
) -> dict[str, Any]:
    """Create (or promote) a person who can sign in locally with the given roles."""
    if len(password) < MIN_PASSWORD:
        raise ValidationError({"password": f"Use at least {MIN_PASSWORD} characters."})
    bad = set(roles) - {r.value for r in Role}
    if bad or not roles:
        raise ValidationError({"role": "Roles are super_admin and it_admin."})
    with ctx.reader.connect() as conn:
        existing = people.find_by_email(conn, org_id, email)
    if existing is None:
        pid = people.add_person(ctx, org_id, actor, {"email": email, "display_name": name, "roles": roles})
    else:
        pid = existing["id"]
        with ctx.reader.connect() as conn:
            have = people.person_roles(conn, pid)
        people.edit_person(ctx, org_id, actor, pid, {"roles": sorted(have | set(roles))})
    now = ctx.now()
    with ctx.engine.begin() as conn:
        lock_org(conn, org_id)
        conn.execute(sa.update(t.people).where(t.people.c.id == pid).values(password_hash=hash_password(password)))
        audit.write(
            conn, org_id, actor, now, [AuditEntry("person", "set_password", pid, "password", None, "(changed)")]
        )
        return people.get_person(conn, org_id, pid)


def authenticate(ctx: AppContext, org_id: int, email: str, password: str) -> dict[str, Any] | None:
    with ctx.reader.connect() as conn:
        row = conn.execute(
            sa.select(t.people.c.id, t.people.c.password_hash, t.people.c.status).where(
                t.people.c.org_id == org_id, t.people.c.email_lower == email.strip().lower()
            )
        ).first()
        if not check_password(row[1] if row else None, password) or row is None or row[2] == "archived":
            return None
        return people.get_person(conn, org_id, row[0])
