"""API: people, the organisation tree and the audit log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from entrasync.errors import ValidationError
from entrasync.services import audit, people
from entrasync.web.api.deps import MAX_ID, Admin, Ctx, DeptText, Id, SearchText, SuperAdmin, User, Write
from entrasync.web.api.schemas import AuditOut, MoveBody, PeoplePage, PersonCreate, PersonOut, PersonUpdate, TreeNode

router = APIRouter()


@router.get("/people", response_model=PeoplePage, response_model_exclude_unset=True, tags=["people"])
def list_people(
    ctx: Ctx,
    me: User,
    status: Literal["active", "paused", "archived", "all"] = "active",
    search: SearchText = None,
    department: DeptText = None,
    manager_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    result = people.list_people(ctx, me.org_id, status=status, search=search, department=department,
                                manager_id=manager_id, page=page, per_page=per_page)  # fmt: skip
    items = [people.visible(i, admin=me.is_admin) for i in result.items]
    return {"items": items, "total": result.total, "page": result.page, "per_page": result.per_page}


@router.post("/people", response_model=PersonOut, status_code=201, tags=["people"], dependencies=[Write])
def create_person(ctx: Ctx, body: PersonCreate, me: SuperAdmin) -> dict[str, Any]:
    pid = people.add_person(ctx, me.org_id, me.actor, body.model_dump())
    return people.get_person(ctx, me.org_id, pid)


@router.get("/people/{person_id}", response_model=PersonOut, response_model_exclude_unset=True, tags=["people"])
def get_person(ctx: Ctx, person_id: Id, me: User) -> dict[str, Any]:
    """A person; employees and managers see the basic fields only, as on the person's page."""
    return people.visible(people.get_person(ctx, me.org_id, person_id), admin=me.is_admin)


@router.patch("/people/{person_id}", response_model=PersonOut, tags=["people"], dependencies=[Write])
def update_person(ctx: Ctx, person_id: Id, body: PersonUpdate, me: SuperAdmin) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=True)
    if values.get("email", "") is None:
        raise ValidationError({"email": "E-mail cannot be empty."})
    return people.edit_person(ctx, me.org_id, me.actor, person_id, values)


@router.post("/people/{person_id}/move", response_model=PersonOut, tags=["people"], dependencies=[Write])
def move_person(ctx: Ctx, person_id: Id, body: MoveBody, me: SuperAdmin) -> dict[str, Any]:
    return people.move_person(ctx, me.org_id, me.actor, person_id, body.manager_id)


@router.post("/people/{person_id}/archive", response_model=PersonOut, tags=["people"], dependencies=[Write])
def archive_person(ctx: Ctx, person_id: Id, me: SuperAdmin) -> dict[str, Any]:
    return people.set_status(ctx, me.org_id, me.actor, person_id, "archived")


@router.post("/people/{person_id}/restore", response_model=PersonOut, tags=["people"], dependencies=[Write])
def restore_person(ctx: Ctx, person_id: Id, me: SuperAdmin) -> dict[str, Any]:
    return people.set_status(ctx, me.org_id, me.actor, person_id, "active")


@router.get("/people/{person_id}/audit", response_model=list[AuditOut], tags=["audit"])
def person_audit(
    ctx: Ctx, person_id: Id, me: Admin, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[dict[str, Any]]:
    people.get_person(ctx, me.org_id, person_id)
    return list(audit.list_entries(ctx, me.org_id, person_id=person_id, limit=limit))


@router.get("/organisation", response_model=list[TreeNode], tags=["people"])
def team_tree(
    ctx: Ctx, me: User, root_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
) -> list[dict[str, Any]]:
    """Direct reports of ``root_id``, or the top of the organisation."""
    return people.team_tree(ctx, me.org_id, root_id)


@router.get("/audit", response_model=list[AuditOut], tags=["audit"])
def audit_log(
    ctx: Ctx,
    me: Admin,
    person_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    return list(audit.list_entries(ctx, me.org_id, person_id=person_id, limit=limit, before_id=before_id))
