"""Local sign-in accounts: the bootstrap admin and others, passwords hashed with argon2."""

from __future__ import annotations

from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from entrasync.adapters.db.audit_repo import AuditEntry
from entrasync.domain.model import Role, Status
from entrasync.errors import ConflictError, ValidationError
from entrasync.services import people
from entrasync.services.context import Actor, AppContext

_hasher = PasswordHasher()  # argon2id, the library's RFC 9106 low-memory profile (t=3, m=64 MiB, p=4)
MIN_PASSWORD = 12
_dummy: list[str] = []


def _dummy_hash() -> str:
    """A fixed hash so a sign-in for an unknown e-mail costs the same time as a wrong password (made on
    first use: hashing costs ~0.2 s, which every process importing this module paid)."""
    if not _dummy:
        _dummy.append(_hasher.hash("entrasync-dummy-password"))
    return _dummy[0]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def create_admin(
    ctx: AppContext,
    org_id: int,
    actor: Actor,
    *,
    email: str,
    name: str,
    password: str,
    roles: list[str],
    reset_password: bool = False,
) -> dict[str, Any]:
    """A local account with exactly ``roles``: a new person, or a person who has no password yet (a synced
    one, say). An account that already has a password is refused unless ``reset_password``, which sets
    the new one and ends that account's sessions."""
    if len(password) < MIN_PASSWORD:
        raise ValidationError({"password": f"Use at least {MIN_PASSWORD} characters."})
    bad = set(roles) - {r.value for r in Role}
    if bad or not roles:
        raise ValidationError({"role": "Roles are super_admin and it_admin."})
    existing = people.find_by_email(ctx, org_id, email)
    if existing is None:
        pid = people.add_person(ctx, org_id, actor, {"email": email, "display_name": name, "roles": roles})
    else:
        pid = int(existing["id"])
        with ctx.read() as uow:
            has_password = uow.people.has_password(pid)
        if has_password and not reset_password:
            raise ConflictError(
                f"An account with the e-mail {email} exists already. Add --reset-password to give it a new password "
                "(that ends its sessions), or use another e-mail."
            )
        people.edit_person(ctx, org_id, actor, pid, {"roles": sorted(set(roles))})
    hashed = hash_password(password)
    now = ctx.now()
    ended = existing is not None and reset_password
    with ctx.write() as uow:
        uow.orgs.bump_version(org_id)
        uow.people.set_password(pid, hashed, end_sessions_at=now if ended else None)
        what = "(reset; sessions ended)" if ended else "(set)"
        uow.audit.write(org_id, actor, now, [AuditEntry("person", "set_password", pid, "password", None, what)])
    return people.get_person(ctx, org_id, pid)


def existing_roles(ctx: AppContext, person_id: int) -> set[str]:
    with ctx.read() as uow:
        return uow.people.roles(person_id)


def authenticate(ctx: AppContext, org_id: int, email: str, password: str) -> dict[str, Any] | None:
    with ctx.read() as uow:
        row = uow.people.sign_in_row(org_id, email)
    if not check_password(row[1] if row else None, password) or row is None or row[2] == Status.ARCHIVED.value:
        return None
    return people.get_person(ctx, org_id, row[0])


def sign_in_candidates(ctx: AppContext, email: str, password: str) -> list[tuple[int, dict[str, Any]]]:
    """(org id, person) of every organisation where this e-mail and password open a local account.

    The sign-in page without an organisation in its URL (§10): one match signs in there, several make
    the page ask which. An e-mail without any local account costs one (dummy) hash check, as a wrong
    password does, so timing does not tell the two apart.
    """
    with ctx.read() as uow:
        org_ids = uow.orgs.ids_by_email(email)
    if not org_ids:
        check_password(None, password)
        return []
    found = []
    for org_id in org_ids:
        person = authenticate(ctx, org_id, email, password)
        if person is not None:
            found.append((org_id, person))
    return found
