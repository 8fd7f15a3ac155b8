"""The people directory: reading it (for the planner and for lists) and Super admins' hand edits."""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.search import contains
from entrasync.domain.model import ADMIN_ROLES, MAX_DEPARTMENTS, PersonRecord, Role, Source, Status
from entrasync.domain.schedule import parse_time_zone
from entrasync.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from entrasync.services import audit
from entrasync.services.audit import AuditEntry
from entrasync.services.context import Actor, AppContext, lock_org

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
TEXT_FIELDS = ("display_name", "given_name", "surname", "job_title", "employee_id", "office_location")
MAX_TEXT = 256


def load_records(conn: Connection, org_id: int) -> list[PersonRecord]:
    """The whole directory of one org as planner records (three queries, no N+1)."""
    p = t.people
    dept_rows = conn.execute(
        sa.select(t.person_departments.c.person_id, t.departments.c.name)
        .join(t.departments, t.departments.c.id == t.person_departments.c.department_id)
        .where(t.departments.c.org_id == org_id)
        .order_by(t.person_departments.c.person_id, t.departments.c.name)
    )
    depts: dict[int, list[str]] = defaultdict(list)
    for pid, name in dept_rows.all():  # fetchall: far cheaper than row-by-row fetchone on SQLite
        depts[pid].append(name)
    roles: dict[int, set[str]] = defaultdict(set)
    for pid, role in conn.execute(
        sa.select(t.person_roles.c.person_id, t.person_roles.c.role)
        .join(p, p.c.id == t.person_roles.c.person_id)
        .where(p.c.org_id == org_id)
    ):
        roles[pid].add(role)
    cols = (
        p.c.id,
        p.c.email,
        p.c.entra_id,
        p.c.user_principal_name,
        p.c.display_name,
        p.c.given_name,
        p.c.surname,
        p.c.job_title,
        p.c.employee_id,
        p.c.office_location,
        p.c.manager_id,
        p.c.status,
        p.c.source,
        # Raw JSON text: nearly every row holds "[]", and decoding 100,000 of those costs ~1 s.
        sa.type_coerce(p.c.manual_fields, sa.Text),
    )
    statuses = {m.value: m for m in Status}
    sources = {m.value: m for m in Source}
    no_depts: tuple[str, ...] = ()
    empty: frozenset[str] = frozenset()
    make = _RECORD_FACTORY
    return [
        make(
            *r[:10],
            tuple(depts[r[0]]) if r[0] in depts else no_depts,
            r[10],
            statuses[r[11]],
            sources[r[12]],
            frozenset(roles[r[0]]) if r[0] in roles else empty,
            _manual_fields(r[13]) if r[13] and r[13] != "[]" else empty,
        )
        for r in conn.execute(sa.select(*cols).where(p.c.org_id == org_id)).all()
    ]


def _manual_fields(raw: Any) -> frozenset[str]:
    """A person's manual_fields column, as text (SQLite) or already decoded (some drivers)."""
    return frozenset(orjson.loads(raw) if isinstance(raw, str | bytes) else raw)


def slots_factory(cls: type[Any], names: Sequence[str]) -> Callable[..., Any]:
    """A positional constructor for a frozen slots dataclass that writes the slots directly.

    A frozen dataclass ``__init__`` routes every field through ``object.__setattr__``; at 100,000
    records per refresh the direct slot writes are about 3x faster. ``names`` must be every field,
    in order; otherwise (or if ``cls`` has no slots) the class itself is returned.
    """
    fields = [f.name for f in dataclasses.fields(cls)]
    if list(names) != fields or "__slots__" not in vars(cls) or hasattr(cls, "__post_init__"):
        return cls
    args = ", ".join(f"a{i}" for i in range(len(names)))
    body = "".join(f"    s{i}(o, a{i})\n" for i in range(len(names)))
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    namespace.update({f"s{i}": getattr(cls, n).__set__ for i, n in enumerate(names)})
    exec(f"def make({args}):\n    o = new(cls)\n{body}    return o\n", namespace)
    made: Callable[..., Any] = namespace["make"]
    return made


_RECORD_FACTORY = slots_factory(PersonRecord, [f.name for f in dataclasses.fields(PersonRecord)])


def department_ids(conn: Connection, org_id: int, names: set[str]) -> dict[str, int]:
    """Ids for department names, creating the missing ones."""
    d = t.departments
    have = (
        {n: i for i, n in conn.execute(sa.select(d.c.id, d.c.name).where(d.c.org_id == org_id, d.c.name.in_(names)))}
        if names
        else {}
    )
    missing = [n for n in names if n not in have]
    if missing:
        conn.execute(sa.insert(d), [{"org_id": org_id, "name": n} for n in missing])
        have.update(
            {
                n: i
                for i, n in conn.execute(sa.select(d.c.id, d.c.name).where(d.c.org_id == org_id, d.c.name.in_(missing)))
            }
        )
    return have


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    page: int
    per_page: int


# What every signed-in person may see of anyone (the People page and the API alike, §1: employees see
# basic person data). Admins (Super admin, IT admin) see every field.
BASIC_FIELDS = frozenset(
    {
        "id",
        "email",
        "display_name",
        "given_name",
        "surname",
        "job_title",
        "departments",
        "manager_id",
        "manager_name",
        "status",
        "source",
        "direct_reports",
    }
)


def visible(item: dict[str, Any], *, admin: bool) -> dict[str, Any]:
    """A person as the viewer may see them: everything for admins, :data:`BASIC_FIELDS` otherwise."""
    if admin:
        return item
    return {k: v for k, v in item.items() if k in BASIC_FIELDS}


def person_dict(row: Any) -> dict[str, Any]:
    m = dict(row._mapping)
    m.pop("password_hash", None)
    m.pop("email_lower", None)
    return m


def list_people(
    conn: Connection,
    org_id: int,
    *,
    status: str | None = "active",
    search: str | None = None,
    department: str | None = None,
    manager_id: int | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page:
    """One page of people, newest filters first; ``status`` None or 'all' lists every status."""
    p = t.people
    conds: list[Any] = [p.c.org_id == org_id]
    if status and status != "all":
        if status not in {s.value for s in Status}:
            raise ValidationError({"status": "Status must be active, paused, archived or all."})
        conds.append(p.c.status == status)
    if search:
        conds.append(sa.or_(contains(p.c.email_lower, search, folded=True), contains(p.c.display_name, search)))
    if department:
        conds.append(
            p.c.id.in_(
                sa.select(t.person_departments.c.person_id)
                .join(t.departments, t.departments.c.id == t.person_departments.c.department_id)
                .where(t.departments.c.org_id == org_id, t.departments.c.name == department)
            )
        )
    if manager_id is not None:
        conds.append(p.c.manager_id == manager_id)
    per_page = max(1, min(per_page, 500))
    page = max(1, page)
    total = int(conn.execute(sa.select(sa.func.count()).select_from(p).where(*conds)).scalar_one())
    rows = conn.execute(
        sa.select(p).where(*conds).order_by(p.c.display_name, p.c.id).limit(per_page).offset((page - 1) * per_page)
    ).all()
    items = [person_dict(r) for r in rows]
    _attach(conn, items)
    return Page(items=items, total=total, page=page, per_page=per_page)


def _attach(conn: Connection, items: list[dict[str, Any]]) -> None:
    """Add departments, roles and manager name to a page of people (three small queries)."""
    ids = [i["id"] for i in items]
    if not ids:
        return
    depts: dict[int, list[str]] = defaultdict(list)
    for pid, name in conn.execute(
        sa.select(t.person_departments.c.person_id, t.departments.c.name)
        .join(t.departments, t.departments.c.id == t.person_departments.c.department_id)
        .where(t.person_departments.c.person_id.in_(ids))
    ):
        depts[pid].append(name)
    roles: dict[int, list[str]] = defaultdict(list)
    for pid, role in conn.execute(
        sa.select(t.person_roles.c.person_id, t.person_roles.c.role).where(t.person_roles.c.person_id.in_(ids))
    ):
        roles[pid].append(role)
    mids = {i["manager_id"] for i in items if i["manager_id"]}
    names = (
        dict(conn.execute(sa.select(t.people.c.id, t.people.c.display_name).where(t.people.c.id.in_(mids))).all())
        if mids
        else {}
    )
    for i in items:
        i["departments"] = sorted(depts.get(i["id"], []))
        i["roles"] = sorted(roles.get(i["id"], []))
        i["manager_name"] = names.get(i["manager_id"]) if i["manager_id"] else None


def get_person(conn: Connection, org_id: int, person_id: int) -> dict[str, Any]:
    row = conn.execute(sa.select(t.people).where(t.people.c.org_id == org_id, t.people.c.id == person_id)).first()
    if row is None:
        raise NotFoundError(f"No person with id {person_id} in this organisation.")
    item = person_dict(row)
    _attach(conn, [item])
    reports = conn.execute(
        sa.select(sa.func.count())
        .select_from(t.people)
        .where(t.people.c.manager_id == person_id, t.people.c.status != "archived")
    ).scalar_one()
    item["direct_reports"] = int(reports)
    return item


def find_by_email(conn: Connection, org_id: int, email: str) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(t.people).where(t.people.c.org_id == org_id, t.people.c.email_lower == email.strip().lower())
    ).first()
    return person_dict(row) if row else None


def person_roles(conn: Connection, person_id: int) -> set[str]:
    return set(conn.execute(sa.select(t.person_roles.c.role).where(t.person_roles.c.person_id == person_id)).scalars())


def team_tree(conn: Connection, org_id: int, root_id: int | None = None, limit: int = 500) -> list[dict[str, Any]]:
    """Direct reports of ``root_id`` (or the top of the organisation), with their report counts."""
    p = t.people
    child = sa.alias(p)
    counts = (
        sa.select(sa.func.count())
        .select_from(child)
        .where(child.c.manager_id == p.c.id, child.c.status != "archived")
        .scalar_subquery()
    )
    cond = p.c.manager_id.is_(None) if root_id is None else p.c.manager_id == root_id
    rows = conn.execute(
        sa.select(p.c.id, p.c.display_name, p.c.email, p.c.job_title, counts.label("reports"))
        .where(p.c.org_id == org_id, p.c.status != "archived", cond)
        .order_by(counts.desc(), p.c.display_name)
        .limit(limit)
    )
    return [dict(r._mapping) for r in rows]


# ---- hand edits by Super admins ---------------------------------------------------------------


def _str_list(value: Any) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, list | tuple) and all(isinstance(x, str) for x in value):
        return list(value)
    return None


def _validate_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Check hand-entered fields; every problem is reported against its field, whatever the input type."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if key == "email":
            addr = value.strip() if isinstance(value, str) else ""
            if not EMAIL_RE.match(addr) or len(addr) > 320 or any(ord(ch) < 32 for ch in addr):
                errors["email"] = "Enter a valid e-mail address, e.g. jane@contoso.com."
            clean["email"] = addr
        elif key in TEXT_FIELDS:
            if value is not None and not isinstance(value, str):
                errors[key] = "Must be text."
                continue
            v = value.strip() if isinstance(value, str) else None
            if v is not None and len(v) > MAX_TEXT:
                errors[key] = f"At most {MAX_TEXT} characters."
            elif v is not None and any(ord(ch) < 32 for ch in v):
                errors[key] = "Control characters are not allowed."
            clean[key] = v or None
        elif key == "departments":
            items = _str_list(value)
            if items is None:
                errors["departments"] = "Give a list of department names."
                continue
            names = [d.strip() for d in items if d.strip()]
            if len(set(names)) > MAX_DEPARTMENTS:
                errors["departments"] = f"A person belongs to at most {MAX_DEPARTMENTS} departments."
            elif any(len(d) > MAX_TEXT or any(ord(ch) < 32 for ch in d) for d in names):
                errors["departments"] = (
                    f"Department names have at most {MAX_TEXT} characters and no control characters."
                )
            clean["departments"] = sorted(set(names))
        elif key == "time_zone":
            if value is not None and not isinstance(value, str):
                errors["time_zone"] = "Must be an IANA time zone name such as Europe/London."
                continue
            if value:
                try:
                    parse_time_zone(value)
                except ValueError as exc:
                    errors["time_zone"] = str(exc)
            clean["time_zone"] = value or None
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


IT_ADMIN_DENIED = (
    "Granting or removing the IT admin role needs the rights that set up the sync: an IT admin, or a Super "
    "admin signed in at Microsoft as a Global Administrator."
)
SUPER_ADMIN_DENIED = "Only a Super admin can grant or remove the Super admin role."


def _role_changes(actor: Actor, person_id: int | None, before: set[str], after: set[str]) -> list[AuditEntry]:
    """Check who may make each role change (§1) and return one audit entry per role granted or removed."""
    changed = before ^ after
    if Role.IT_ADMIN.value in changed and not actor.integrator:
        raise PermissionDeniedError(IT_ADMIN_DENIED)
    if Role.SUPER_ADMIN.value in changed and not actor.super_admin:
        raise PermissionDeniedError(SUPER_ADMIN_DENIED)
    entries = [AuditEntry("person", "grant_role", person_id, "roles", None, r) for r in sorted(after - before)]
    entries += [AuditEntry("person", "revoke_role", person_id, "roles", r, None) for r in sorted(before - after)]
    return entries


def _other_admins(conn: Connection, org_id: int, person_id: int) -> int:
    """Active or paused people other than ``person_id`` who hold an admin role in the organisation."""
    p, r = t.people, t.person_roles
    return int(
        conn.execute(
            sa.select(sa.func.count(sa.distinct(p.c.id)))
            .select_from(p.join(r, r.c.person_id == p.c.id))
            .where(p.c.org_id == org_id, p.c.id != person_id, p.c.status != "archived", r.c.role.in_(ADMIN_ROLES))
        ).scalar_one()
    )


def _keep_an_admin(conn: Connection, org_id: int, person: dict[str, Any], what: str) -> None:
    """Nobody may remove the last admin of an organisation (§1): they would lock everyone out."""
    is_admin = person["status"] != "archived" and ADMIN_ROLES & set(person.get("roles") or ())
    if is_admin and _other_admins(conn, org_id, int(person["id"])) == 0:
        name = person.get("display_name") or person["email"]
        raise ConflictError(
            f"{name} is the last admin of this organisation, so {what}. Give someone else the Super admin "
            "or IT admin role first."
        )


def _set_departments(conn: Connection, org_id: int, person_id: int, names: Sequence[str]) -> None:
    conn.execute(sa.delete(t.person_departments).where(t.person_departments.c.person_id == person_id))
    if names:
        ids = department_ids(conn, org_id, set(names))
        conn.execute(
            sa.insert(t.person_departments), [{"person_id": person_id, "department_id": ids[n]} for n in names]
        )


def add_person(ctx: AppContext, org_id: int, actor: Actor, values: dict[str, Any]) -> int:
    """Add a person by hand (source manual). The e-mail must be new in the organisation."""
    if not values.get("email"):
        raise ValidationError({"email": "E-mail is required."})
    clean = _validate_fields(values)
    now = ctx.now()
    with ctx.engine.begin() as conn:
        lock_org(conn, org_id)
        if find_by_email(conn, org_id, clean["email"]):
            raise ValidationError({"email": "Someone in this organisation already has this e-mail."})
        roles = clean.pop("roles", [])
        role_entries = _role_changes(actor, None, set(), set(roles))
        depts = clean.pop("departments", [])
        row = {k: clean.get(k) for k in (*TEXT_FIELDS, "time_zone")}
        pid = conn.execute(
            sa.insert(t.people).values(
                org_id=org_id,
                email=clean["email"],
                email_lower=clean["email"].lower(),
                status="active",
                source="manual",
                manual_fields=[],
                created_at=now,
                updated_at=now,
                **row,
            )
        ).inserted_primary_key
        assert pid is not None
        person_id = int(pid[0])
        _set_departments(conn, org_id, person_id, depts)
        if roles:
            conn.execute(sa.insert(t.person_roles), [{"person_id": person_id, "role": r} for r in roles])
        created = AuditEntry("person", "create", person_id, None, None, {**clean, "departments": depts, "roles": roles})
        audit.write(conn, org_id, actor, now, [created, *(replace(e, person_id=person_id) for e in role_entries)])
    return person_id


def edit_person(ctx: AppContext, org_id: int, actor: Actor, person_id: int, values: dict[str, Any]) -> dict[str, Any]:
    """Edit fields by hand. Synced fields edited on a synced person are remembered as manual edits,
    which the next plan shows as overwritten by Entra's value."""
    clean = _validate_fields(values)
    now = ctx.now()
    with ctx.engine.begin() as conn:
        lock_org(conn, org_id)
        before = get_person(conn, org_id, person_id)
        entries: list[AuditEntry] = []
        updates: dict[str, Any] = {}
        manual = set(before["manual_fields"] or [])
        for key, new in clean.items():
            old = before.get(key)
            if key in ("departments", "roles"):
                if sorted(old or []) == sorted(new):
                    continue
            elif old == new:
                continue
            if key == "roles":
                entries.extend(_role_changes(actor, person_id, set(old or ()), set(new)))
                if not ADMIN_ROLES & set(new):
                    _keep_an_admin(conn, org_id, before, "their admin roles cannot be removed")
                conn.execute(sa.delete(t.person_roles).where(t.person_roles.c.person_id == person_id))
                if new:
                    conn.execute(sa.insert(t.person_roles), [{"person_id": person_id, "role": r} for r in new])
                continue
            entries.append(AuditEntry("person", "update", person_id, key, old, new))
            if key == "departments":
                _set_departments(conn, org_id, person_id, new)
                manual.add(key)
            else:
                updates[key] = new
                if key != "time_zone":
                    manual.add(key)
                if key == "email":
                    other = find_by_email(conn, org_id, new)
                    if other and other["id"] != person_id:
                        raise ValidationError({"email": "Someone in this organisation already has this e-mail."})
                    updates["email_lower"] = new.lower()
        if entries:
            conn.execute(
                sa.update(t.people)
                .where(t.people.c.id == person_id)
                .values(**updates, manual_fields=sorted(manual), updated_at=now)
            )
            audit.write(conn, org_id, actor, now, entries)
        return get_person(conn, org_id, person_id)


def move_person(ctx: AppContext, org_id: int, actor: Actor, person_id: int, manager_id: int | None) -> dict[str, Any]:
    """Move a person to another team, i.e. give them another manager (teams come from manager links)."""
    now = ctx.now()
    with ctx.engine.begin() as conn:
        lock_org(conn, org_id)
        before = get_person(conn, org_id, person_id)
        if manager_id is not None:
            if manager_id == person_id:
                raise ValidationError({"manager_id": "A person cannot be their own manager."})
            mgr = get_person(conn, org_id, manager_id)
            if mgr["status"] == "archived":
                raise ValidationError({"manager_id": "The new manager is archived."})
            # Refuse cycles: walk up from the new manager.
            seen: set[int] = set()
            cur: int | None = manager_id
            while cur is not None and cur not in seen:
                if cur == person_id:
                    raise ValidationError({"manager_id": "That would make a reporting loop."})
                seen.add(cur)
                cur = conn.execute(sa.select(t.people.c.manager_id).where(t.people.c.id == cur)).scalar()
        if before["manager_id"] != manager_id:
            manual = set(before["manual_fields"] or []) | {"manager"}
            conn.execute(
                sa.update(t.people)
                .where(t.people.c.id == person_id)
                .values(manager_id=manager_id, manual_fields=sorted(manual), updated_at=now)
            )
            audit.write(
                conn,
                org_id,
                actor,
                now,
                [AuditEntry("person", "move", person_id, "manager", before["manager_id"], manager_id)],
            )
        return get_person(conn, org_id, person_id)


def set_status(ctx: AppContext, org_id: int, actor: Actor, person_id: int, status: str) -> dict[str, Any]:
    """Archive, restore (to active) or pause a person by hand. Nothing is ever deleted."""
    if status not in {s.value for s in Status}:
        raise ValidationError({"status": "Status must be active, paused or archived."})
    now = ctx.now()
    with ctx.engine.begin() as conn:
        lock_org(conn, org_id)
        before = get_person(conn, org_id, person_id)
        if before["status"] == status:
            raise ConflictError(f"This person is already {status}.")
        if status == "archived":
            _keep_an_admin(conn, org_id, before, "they cannot be archived")
        values: dict[str, Any] = {"status": status, "updated_at": now}
        values["archived_at"] = now if status == "archived" else None
        conn.execute(sa.update(t.people).where(t.people.c.id == person_id).values(**values))
        action = {"archived": "archive", "active": "restore", "paused": "pause"}[status]
        audit.write(
            conn, org_id, actor, now, [AuditEntry("person", action, person_id, "status", before["status"], status)]
        )
        return get_person(conn, org_id, person_id)
