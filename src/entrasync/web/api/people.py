"""API: people (cursor paging, exact look-ups, ``updated_since``), a manager's team and the
organisation tree (spec §7, §11 "Reading the directory")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from entrasync.errors import PermissionDeniedError, ValidationError
from entrasync.services import people, people_facets
from entrasync.web.api.deps import MAX_ID, NO_NUL, After, Ctx, DeptText, Id, Limit, SearchText, SuperAdmin, User, Write
from entrasync.web.api.schemas import MoveBody, Page, PersonCreate, PersonOut, PersonUpdate, TreeNode

router = APIRouter()
ExactText = Annotated[str | None, Query(max_length=320, pattern=NO_NUL)]
FacetText = Annotated[str | None, Query(max_length=128, pattern=NO_NUL, description="That value, in any case.")]
LOOKUP_DENIED = "Only a Super admin or an IT admin can look people up by Entra id or employee id."


@router.get("/people", response_model=Page[PersonOut], response_model_exclude_unset=True, tags=["people"])
def list_people(
    ctx: Ctx,
    me: User,
    status: Literal["active", "paused", "archived", "all"] = "active",
    search: SearchText = None,
    department: DeptText = None,
    manager_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    updated_since: Annotated[datetime | None, Query(description="Changed at or after this instant.")] = None,
    entra_id: ExactText = None,
    email: ExactText = None,
    employee_id: ExactText = None,
    employee_type: FacetText = None,
    company_name: FacetText = None,
    city: FacetText = None,
    country: FacetText = None,
    after: After = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    """People by id: a page never shifts when someone is added or edited meanwhile. ``entra_id``,
    ``email`` (any case) and ``employee_id`` are exact look-ups; combine with ``status=all`` to find
    archived people too. ``employee_type``, ``company_name``, ``city`` and ``country`` filter on that
    value, in any case. Employees and managers see the basic fields only."""
    if (entra_id is not None or employee_id is not None) and not me.is_admin:
        raise PermissionDeniedError(LOOKUP_DENIED)
    if updated_since is not None and updated_since.tzinfo is None:
        raise ValidationError({"updated_since": "Give a time zone, e.g. 2024-05-01T09:00:00Z."})
    pg = people.find_people(ctx, me.org_id, after=after, limit=limit, status=status, search=search,
                            department=department, manager_id=manager_id, updated_since=updated_since,
                            entra_id=entra_id, email=email, employee_id=employee_id,
                            facets=people_facets.facets_of({"employee_type": employee_type,
                                                            "company_name": company_name, "city": city,
                                                            "country": country}))  # fmt: skip
    return {"items": [people.visible(i, admin=me.is_admin) for i in pg.items], "next_cursor": pg.next_cursor}


@router.post("/people", response_model=PersonOut, status_code=201, tags=["people"], dependencies=[Write])
def create_person(ctx: Ctx, body: PersonCreate, me: SuperAdmin) -> dict[str, Any]:
    pid = people.add_person(ctx, me.org_id, me.actor, body.model_dump())
    return people.get_person(ctx, me.org_id, pid)


@router.get("/people/{person_id}", response_model=PersonOut, response_model_exclude_unset=True, tags=["people"])
def get_person(ctx: Ctx, person_id: Id, me: User) -> dict[str, Any]:
    """A person; employees and managers see the basic fields only, as on the person's page."""
    return people.visible(people.get_person(ctx, me.org_id, person_id), admin=me.is_admin)


@router.get(
    "/people/{person_id}/team", response_model=Page[PersonOut], response_model_exclude_unset=True, tags=["people"]
)
def get_team(ctx: Ctx, person_id: Id, me: User, after: After = None, limit: Limit = 50) -> dict[str, Any]:
    """A manager's team: their direct reports who are not archived, by id."""
    pg = people.team_page(ctx, me.org_id, person_id, after=after, limit=limit)
    return {"items": [people.visible(i, admin=me.is_admin) for i in pg.items], "next_cursor": pg.next_cursor}


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


@router.get("/organisation", response_model=Page[TreeNode], tags=["people"])
def team_tree(
    ctx: Ctx,
    me: User,
    root_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    after: After = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    """The organisation tree, one level at a time: the top of the organisation (no ``root_id``) or a
    person's direct reports, each with its report count."""
    return people.tree_page(ctx, me.org_id, root_id, after=after, limit=limit).public()
