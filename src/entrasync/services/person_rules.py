"""What a hand edit may contain (spec §1), and who may change which role: checked before anything is
written, each problem reported against its field."""

from __future__ import annotations

import re
from typing import Any

from entrasync.adapters.db.audit_repo import AuditEntry
from entrasync.domain import fields
from entrasync.domain.model import MAX_DEPARTMENTS, Role
from entrasync.domain.schedule import parse_time_zone
from entrasync.errors import PermissionDeniedError, ValidationError
from entrasync.services.context import Actor

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
# Mapped text fields an admin may edit by hand, with their column limits (the e-mail and the user
# principal name are identity: the e-mail has its own rule, the principal name comes from Entra only).
TEXT_LIMITS: dict[str, int] = {
    f.name: f.limit
    for f in fields.FIELDS
    if f.kind is fields.FieldKind.TEXT and f.name not in ("email", "user_principal_name")
}
TEXT_FIELDS = tuple(TEXT_LIMITS)
DEPARTMENT_LIMIT = fields.BY_NAME["departments"].limit

IT_ADMIN_DENIED = (
    "Granting or removing the IT admin role needs the rights that set up the sync: an IT admin, or a Super "
    "admin signed in at Microsoft as a Global Administrator."
)
SUPER_ADMIN_DENIED = "Only a Super admin can grant or remove the Super admin role."


def _str_list(value: Any) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, list | tuple) and all(isinstance(x, str) for x in value):
        return list(value)
    return None


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 for ch in text)


def _text(key: str, value: Any, errors: dict[str, str]) -> str | None:
    if value is not None and not isinstance(value, str):
        errors[key] = "Must be text."
        return None
    v = value.strip() if isinstance(value, str) else None
    limit = TEXT_LIMITS[key]
    if v is not None and len(v) > limit:
        errors[key] = f"At most {limit} characters."
    elif v is not None and _has_control(v):
        errors[key] = "Control characters are not allowed."
    return v or None


def _departments(value: Any, errors: dict[str, str]) -> list[str] | None:
    items = _str_list(value)
    if items is None:
        errors["departments"] = "Give a list of department names."
        return None
    names = [d.strip() for d in items if d.strip()]
    if len(set(names)) > MAX_DEPARTMENTS:
        errors["departments"] = f"A person belongs to at most {MAX_DEPARTMENTS} departments."
    elif any(len(d) > DEPARTMENT_LIMIT or _has_control(d) for d in names):
        errors["departments"] = (
            f"Department names have at most {DEPARTMENT_LIMIT} characters and no control characters."
        )
    return sorted(set(names))


def _time_zone(value: Any, errors: dict[str, str]) -> str | None:
    if value is not None and not isinstance(value, str):
        errors["time_zone"] = "Must be an IANA time zone name such as Europe/London."
        return None
    if value:
        try:
            parse_time_zone(value)
        except ValueError as exc:
            errors["time_zone"] = str(exc)
    return value or None


def validate_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Check hand-entered fields; every problem is reported against its field, whatever the input type."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if key == "email":
            addr = value.strip() if isinstance(value, str) else ""
            limit = fields.BY_NAME["email"].limit
            if not EMAIL_RE.match(addr) or len(addr) > limit or _has_control(addr):
                errors["email"] = "Enter a valid e-mail address, e.g. jane@contoso.com."
            clean["email"] = addr
        elif key in TEXT_LIMITS:
            clean[key] = _text(key, value, errors)
        elif key == "departments":
            depts = _departments(value, errors)
            if depts is not None:
                clean["departments"] = depts
        elif key == "time_zone":
            clean["time_zone"] = _time_zone(value, errors)
        elif key == "roles":
            items = _str_list(value)
            if items is None or set(items) - {r.value for r in Role}:
                errors["roles"] = "Roles are super_admin and it_admin."
                continue
            clean["roles"] = sorted(set(items))
        else:
            errors[key] = "Unknown field."
    if errors:
        raise ValidationError(errors)
    return clean


def role_changes(actor: Actor, person_id: int | None, before: set[str], after: set[str]) -> list[AuditEntry]:
    """Check who may make each role change (§1) and return one audit entry per role granted or removed."""
    changed = before ^ after
    if Role.IT_ADMIN.value in changed and not actor.integrator:
        raise PermissionDeniedError(IT_ADMIN_DENIED)
    if Role.SUPER_ADMIN.value in changed and not actor.super_admin:
        raise PermissionDeniedError(SUPER_ADMIN_DENIED)
    entries = [AuditEntry("person", "grant_role", person_id, "roles", None, r) for r in sorted(after - before)]
    entries += [AuditEntry("person", "revoke_role", person_id, "roles", r, None) for r in sorted(before - after)]
    return entries
