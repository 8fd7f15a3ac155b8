"""The people directory: lists, one person, the organisation tree, and Super admins' hand edits (§1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from entrasync.adapters.db.audit_repo import AuditEntry
from entrasync.adapters.db.events_repo import NewEvent
from entrasync.adapters.db.uow import UnitOfWork
from entrasync.domain import fields
from entrasync.domain.events import BY_HAND_REASON, FEED_FIELDS, change, person_values
from entrasync.domain.model import ADMIN_ROLES, Status
from entrasync.domain.states import EventType
from entrasync.errors import ConflictError, NotFoundError, ValidationError
from entrasync.services import paging
from entrasync.services.context import Actor, AppContext
from entrasync.services.person_rules import TEXT_FIELDS, role_changes, validate_fields

__all__ = ["BASIC_FIELDS", "TEXT_FIELDS", "Page", "add_person", "edit_person", "get_person", "list_people",
           "move_person", "set_status", "visible"]  # fmt: skip

MAX_PER_PAGE = 500

# What every signed-in person may see of anyone (the People page and the API alike, §1: employees see
# basic person data): the mapped fields marked ``everyone`` and the directory's own basics. Admins
# (Super admin, IT admin) see every field.
BASIC_FIELDS = frozenset(
    {f.name for f in fields.FIELDS if f.everyone}
    | {"id", "manager_id", "manager_name", "status", "source", "direct_reports"}
)


def visible(item: dict[str, Any], *, admin: bool) -> dict[str, Any]:
    """A person as the viewer may see them: everything for admins, :data:`BASIC_FIELDS` otherwise."""
    if admin:
        return item
    return {k: v for k, v in item.items() if k in BASIC_FIELDS}


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    page: int
    per_page: int


# ---- reading ---------------------------------------------------------------------------------------


def list_people(
    ctx: AppContext,
    org_id: int,
    *,
    status: str | None = "active",
    search: str | None = None,
    department: str | None = None,
    manager_id: int | None = None,
    page: int = 1,
    per_page: int = 50,
    facets: Mapping[str, str] | None = None,
) -> Page:
    """One page of people by name; ``status`` None or 'all' lists every status; ``facets`` as
    :func:`people_facets.facets_of` gives them."""
    if status and status != "all" and status not in {s.value for s in Status}:
        raise ValidationError({"status": "Status must be active, paused, archived or all."})
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    with ctx.read() as uow:
        items, total = uow.people.page(
            org_id, status=status, search=search, department=department, manager_id=manager_id, page=page,
            per_page=per_page, facets=facets,
        )  # fmt: skip
    return Page(items=items, total=total, page=page, per_page=per_page)


PEOPLE_KIND, TREE_KIND = "people", "tree"


def find_people(
    ctx: AppContext,
    org_id: int,
    *,
    after: str | None = None,
    limit: int = 50,
    status: str | None = "active",
    search: str | None = None,
    department: str | None = None,
    manager_id: int | None = None,
    updated_since: datetime | None = None,
    entra_id: str | None = None,
    email: str | None = None,
    employee_id: str | None = None,
    facets: Mapping[str, str] | None = None,
) -> paging.CursorPage:
    """People by id with an opaque cursor (the API's lists, spec §11): stable while people are added or
    edited; exact look-ups by Entra object id, e-mail (case-insensitive) and employee id; ``updated_since``."""
    if status and status != "all" and status not in {s.value for s in Status}:
        raise ValidationError({"status": "Status must be active, paused, archived or all."})
    limit = paging.limit_of(limit)
    with ctx.read() as uow:
        rows = uow.people_pages.keyset(
            org_id, after_id=paging.decode_id(PEOPLE_KIND, after) or 0, limit=limit + 1, status=status,
            search=search, department=department, manager_id=manager_id, updated_since=updated_since,
            entra_id=entra_id, email=email, employee_id=employee_id, facets=facets,
        )  # fmt: skip
    return paging.page_of(PEOPLE_KIND, rows, limit)


def team_page(
    ctx: AppContext, org_id: int, manager_id: int, *, after: str | None = None, limit: int = 50
) -> paging.CursorPage:
    """A manager's team: their direct reports who are not archived (§1: teams come from manager links)."""
    limit = paging.limit_of(limit)
    with ctx.read() as uow:
        _get(uow, org_id, manager_id)
        rows = uow.people_pages.keyset(org_id, after_id=paging.decode_id(PEOPLE_KIND, after) or 0, limit=limit + 1,
                                 manager_id=manager_id, not_archived=True)  # fmt: skip
    return paging.page_of(PEOPLE_KIND, rows, limit)


def tree_page(
    ctx: AppContext, org_id: int, root_id: int | None, *, after: str | None = None, limit: int = 50
) -> paging.CursorPage:
    """One level of the organisation tree: the top of the organisation, or a person's direct reports,
    each with their own report count, so a client walks down as deep as it likes."""
    limit = paging.limit_of(limit)
    with ctx.read() as uow:
        if root_id is not None:
            _get(uow, org_id, root_id)
        rows = uow.people_pages.tree_keyset(org_id, root_id, after_id=paging.decode_id(TREE_KIND, after) or 0,
                                      limit=limit + 1)  # fmt: skip
    return paging.page_of(TREE_KIND, rows, limit)


def _get(uow: UnitOfWork, org_id: int, person_id: int) -> dict[str, Any]:
    person = uow.people.get(org_id, person_id)
    if person is None:
        raise NotFoundError(f"No person with id {person_id} in this organisation.")
    return person


def get_person(ctx: AppContext, org_id: int, person_id: int) -> dict[str, Any]:
    with ctx.read() as uow:
        return _get(uow, org_id, person_id)


def find_by_email(ctx: AppContext, org_id: int, email: str) -> dict[str, Any] | None:
    with ctx.read() as uow:
        return uow.people.find_by_email(org_id, email)


def find_by_login(ctx: AppContext, org_id: int, names: list[str]) -> dict[str, Any] | None:
    """The (not archived) person whose e-mail or user principal name is one of ``names`` (Microsoft sign-in)."""
    with ctx.read() as uow:
        return uow.people.find_by_login(org_id, names)


def check_recipient(ctx: AppContext, org_id: int, recipient_id: Any) -> None:
    """A Recipient, when one is given, is a Super admin of this organisation."""
    if recipient_id is None:
        return
    with ctx.read() as uow:
        ok = isinstance(recipient_id, int) and uow.people.is_super_admin(org_id, recipient_id)
    if not ok:
        raise ValidationError({"recipient_id": "Choose a Recipient who is a Super admin of this organisation."})


def person_name(ctx: AppContext, org_id: int, person_id: int) -> str | None:
    with ctx.read() as uow:
        return uow.people.name(org_id, person_id)


def departments(ctx: AppContext, org_id: int) -> list[str]:
    with ctx.read() as uow:
        return uow.people.departments(org_id)


def managers(ctx: AppContext, org_id: int) -> list[dict[str, Any]]:
    """People who have direct reports (the People page's team filter)."""
    with ctx.read() as uow:
        return uow.people.managers(org_id)


def super_admins(ctx: AppContext, org_id: int) -> list[dict[str, Any]]:
    with ctx.read() as uow:
        return uow.people.super_admins(org_id)


def team_tree(ctx: AppContext, org_id: int, root_id: int | None = None) -> list[dict[str, Any]]:
    """Direct reports of ``root_id`` (or the top of the organisation), with their report counts."""
    with ctx.read() as uow:
        if root_id is not None:
            _get(uow, org_id, root_id)
        return uow.people.team(org_id, root_id)


def chain_of_command(ctx: AppContext, org_id: int, person_id: int, limit: int = 30) -> list[dict[str, Any]]:
    """A person's managers, from the top of the organisation down to their own manager."""
    trail: list[dict[str, Any]] = []
    with ctx.read() as uow:
        cur: dict[str, Any] | None = _get(uow, org_id, person_id)
        seen: set[int] = set()
        while cur is not None and cur.get("manager_id") and cur["manager_id"] not in seen and len(trail) < limit:
            seen.add(cur["manager_id"])
            cur = uow.people.get(org_id, cur["manager_id"])
            if cur is not None:
                trail.insert(0, cur)
    return trail


# ---- hand edits by Super admins ------------------------------------------------------------------------


def _keep_an_admin(uow: UnitOfWork, org_id: int, person: dict[str, Any], what: str) -> None:
    """Nobody may remove the last admin of an organisation (§1): they would lock everyone out."""
    is_admin = person["status"] != Status.ARCHIVED.value and ADMIN_ROLES & set(person.get("roles") or ())
    if is_admin and uow.people.other_admins(org_id, int(person["id"])) == 0:
        name = person.get("display_name") or person["email"]
        raise ConflictError(
            f"{name} is the last admin of this organisation, so {what}. Give someone else the Super admin "
            "or IT admin role first."
        )


def add_person(ctx: AppContext, org_id: int, actor: Actor, values: dict[str, Any]) -> int:
    """Add a person by hand (source manual). The e-mail must be new in the organisation."""
    if not values.get("email"):
        raise ValidationError({"email": "E-mail is required."})
    clean = validate_fields(values)
    roles = clean.pop("roles", [])
    role_entries = role_changes(actor, None, set(), set(roles))
    depts = clean.pop("departments", [])
    now = ctx.now()
    with ctx.write() as uow:
        version = uow.orgs.bump_version(org_id)
        if uow.people.find_by_email(org_id, clean["email"]):
            raise ValidationError({"email": "Someone in this organisation already has this e-mail."})
        row = {k: clean.get(k) for k in (*TEXT_FIELDS, "time_zone")}
        pid = uow.people.insert(
            org_id,
            {"email": clean["email"], **row, "status": Status.ACTIVE.value, "source": "manual", "manual_fields": [],
             "created_at": now, "updated_at": now, "version": version},
        )  # fmt: skip
        uow.people.set_departments(org_id, pid, depts)
        uow.people.set_roles(pid, roles)
        created = AuditEntry("person", "create", pid, None, None, {**clean, "departments": depts, "roles": roles})
        uow.audit.write(org_id, actor, now, [created, *(replace(e, person_id=pid) for e in role_entries)])
        person = person_values(_get(uow, org_id, pid))
        uow.events.append(org_id, actor, now, [NewEvent(EventType.CREATED, pid, {"person": person})])
    return pid


def edit_person(ctx: AppContext, org_id: int, actor: Actor, person_id: int, values: dict[str, Any]) -> dict[str, Any]:
    """Edit fields by hand. Synced fields edited on a synced person are remembered as manual edits,
    which the next plan shows as overwritten by Entra's value."""
    clean = validate_fields(values)
    now = ctx.now()
    with ctx.write() as uow:
        version = uow.orgs.bump_version(org_id)
        before = _get(uow, org_id, person_id)
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
                entries.extend(role_changes(actor, person_id, set(old or ()), set(new)))
                if not ADMIN_ROLES & set(new):
                    _keep_an_admin(uow, org_id, before, "their admin roles cannot be removed")
                uow.people.set_roles(person_id, new)
                continue
            entries.append(AuditEntry("person", "update", person_id, key, old, new))
            if key == "departments":
                uow.people.set_departments(org_id, person_id, new)
                manual.add(key)
                continue
            updates[key] = new
            if key != "time_zone":
                manual.add(key)
            if key == "email":
                other = uow.people.find_by_email(org_id, new)
                if other and other["id"] != person_id:
                    raise ValidationError({"email": "Someone in this organisation already has this e-mail."})
        if entries:
            uow.people.update(
                person_id, {**updates, "manual_fields": sorted(manual), "updated_at": now, "version": version}
            )
            uow.audit.write(org_id, actor, now, entries)
        # The feed carries directory fields only: a change of roles alone is no event (§11).
        diffs = [change(e.field, e.old, e.new) for e in entries if e.action == "update" and e.field in FEED_FIELDS]
        if diffs:
            ev = NewEvent(EventType.UPDATED, person_id, {"changes": diffs, "reason": BY_HAND_REASON})
            uow.events.append(org_id, actor, now, [ev])
        return _get(uow, org_id, person_id)


def move_person(ctx: AppContext, org_id: int, actor: Actor, person_id: int, manager_id: int | None) -> dict[str, Any]:
    """Move a person to another team, i.e. give them another manager (teams come from manager links)."""
    now = ctx.now()
    with ctx.write() as uow:
        version = uow.orgs.bump_version(org_id)
        before = _get(uow, org_id, person_id)
        if manager_id is not None:
            if manager_id == person_id:
                raise ValidationError({"manager_id": "A person cannot be their own manager."})
            mgr = _get(uow, org_id, manager_id)
            if mgr["status"] == Status.ARCHIVED.value:
                raise ValidationError({"manager_id": "The new manager is archived."})
            seen: set[int] = set()  # refuse cycles: walk up from the new manager
            cur: int | None = manager_id
            while cur is not None and cur not in seen:
                if cur == person_id:
                    raise ValidationError({"manager_id": "That would make a reporting loop."})
                seen.add(cur)
                cur = uow.people.manager_of(cur)
        if before["manager_id"] != manager_id:
            manual = set(before["manual_fields"] or []) | {"manager"}
            uow.people.update(
                person_id,
                {"manager_id": manager_id, "manual_fields": sorted(manual), "updated_at": now, "version": version},
            )
            uow.audit.write(
                org_id,
                actor,
                now,
                [AuditEntry("person", "move", person_id, "manager", before["manager_id"], manager_id)],
            )
            diffs = [change("manager_id", before["manager_id"], manager_id)]
            ev = NewEvent(EventType.MOVED, person_id, {"changes": diffs, "reason": BY_HAND_REASON})
            uow.events.append(org_id, actor, now, [ev])
        return _get(uow, org_id, person_id)


def set_status(ctx: AppContext, org_id: int, actor: Actor, person_id: int, status: str) -> dict[str, Any]:
    """Archive, restore (to active) or pause a person by hand. Nothing is ever deleted."""
    if status not in {s.value for s in Status}:
        raise ValidationError({"status": "Status must be active, paused or archived."})
    now = ctx.now()
    with ctx.write() as uow:
        version = uow.orgs.bump_version(org_id)
        before = _get(uow, org_id, person_id)
        if before["status"] == status:
            raise ConflictError(f"This person is already {status}.")
        if status == Status.ARCHIVED.value:
            _keep_an_admin(uow, org_id, before, "they cannot be archived")
        uow.people.update(
            person_id,
            {
                "status": status,
                "updated_at": now,
                "version": version,
                "archived_at": now if status == Status.ARCHIVED.value else None,
            },
        )
        action = {"archived": "archive", "active": "restore", "paused": "pause"}[status]
        uow.audit.write(
            org_id, actor, now, [AuditEntry("person", action, person_id, "status", before["status"], status)]
        )
        kind = (
            EventType.ARCHIVED
            if status == Status.ARCHIVED.value
            else EventType.RESTORED
            if before["status"] == Status.ARCHIVED.value
            else EventType.UPDATED
        )
        data = {"changes": [change("status", before["status"], status)], "reason": BY_HAND_REASON}
        uow.events.append(org_id, actor, now, [NewEvent(kind, person_id, data)])
        return _get(uow, org_id, person_id)


# ---- reads for the pages (the Matched tab with no plan waiting, the organisation chart) -------------


def linked_page(
    ctx: AppContext, org_id: int, *, search: str | None, page: int, per_page: int
) -> tuple[list[dict[str, Any]], int]:
    """Linked people who are not archived, by name: what Matched lists when no plan waits."""
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    with ctx.read() as uow:
        total = None if search else uow.people.count_linked(org_id)
        return uow.people.linked_page(org_id, search=search, page=max(page, 1), per_page=per_page, total=total)


@dataclass(frozen=True, slots=True)
class TopOfOrganisation:
    """People nobody manages, in the three groups the chart explains: heads of teams (usually the CEO),
    synced people without a manager in Entra, and people added by hand (such as local admins). The last
    two lists stop at their first few by name; their totals say how many there are."""

    heads: list[dict[str, Any]]
    without_manager: list[dict[str, Any]]
    without_manager_total: int
    by_hand: list[dict[str, Any]]
    by_hand_total: int


def top_of_organisation(ctx: AppContext, org_id: int) -> TopOfOrganisation:
    with ctx.read() as uow:
        return TopOfOrganisation(**uow.people.top_of_org(org_id))


def names_for_emails(ctx: AppContext, org_id: int, emails: list[str]) -> dict[str, str]:
    """Lower-cased e-mail -> name, for a page that names people by e-mail (who triggered a run)."""
    if not emails:
        return {}
    with ctx.read() as uow:
        return {e: str(v["name"]) for e, v in uow.people.names_by_email(org_id, emails).items()}


def names_for_ids(ctx: AppContext, org_id: int, ids: list[int]) -> dict[int, str]:
    """Person id -> name, for a page that names people by id (managers in an audit trail)."""
    if not ids:
        return {}
    with ctx.read() as uow:
        return {i: str(v["name"]) for i, v in uow.people.names_by_id(org_id, ids).items()}


def more_facts(ctx: AppContext, org_id: int, person: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(field, label, value) of the "more" facts of the person's page (spec §12): the more of Entra, and
    the custom fields in use (with the mapping's labels), those the viewer may see (``person`` is already
    :func:`visible`)."""
    from entrasync.domain import mapping as field_mapping

    with ctx.read() as uow:
        maps = uow.settings.load(org_id).field_maps()
    out: list[tuple[str, str, str]] = []
    for f, m in zip(fields.FIELDS, maps, strict=True):
        if not (f.more or f.custom) or f.name not in person:
            continue
        value = person.get(f.name)
        if f.custom and m.source is None and not value:
            continue
        shown = ", ".join(value) if isinstance(value, list | tuple) else ("" if value is None else str(value))
        out.append((f.name, field_mapping.label_of(maps, f.name), shown or "–"))
    return out
