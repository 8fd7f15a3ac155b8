"""Pages: People, a person (with hand edits) and Add person."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, Response

from entrasync.errors import NotFoundError, PermissionDeniedError, ValidationError
from entrasync.services import audit, connection, people, people_facets
from entrasync.web import present
from entrasync.web.auth import Principal, require_super_admin, require_user
from entrasync.web.forms import text, to_int
from entrasync.web.pages.common import PER_PAGE, ctx_of, form_of, page_count, redirect
from entrasync.web.render import flash, render

router = APIRouter(include_in_schema=False)
PERSON_FIELDS = ("email", *people.TEXT_FIELDS)  # the form's text fields (departments and roles apart)


@router.get("/people")
def people_list(request: Request, me: Principal = Depends(require_user)) -> Response:
    q = request.query_params
    status = q.get("status", "active")
    if status not in ("active", "paused", "archived", "all"):
        status = "active"
    search = (q.get("q") or "").replace("\x00", "").strip()[:200]
    department = (q.get("department") or "").replace("\x00", "").strip()[:256] or None
    team = to_int(q.get("team"))
    page = to_int(q.get("page"), 1, hi=10**6) or 1
    facets = people_facets.facets_of({name: q.get(name) for name in people_facets.FACETS})
    ctx = ctx_of(request)
    result = people.list_people(
        ctx, me.org_id, status=status, search=search or None, department=department, manager_id=team,
        page=page, per_page=PER_PAGE, facets=facets,
    )  # fmt: skip
    depts = people.departments(ctx, me.org_id)
    managers = people.managers(ctx, me.org_id)
    team_name = people.person_name(ctx, me.org_id, team) if team else None
    base = {"status": status, "q": search, "department": department or "", "team": team or "", **facets}
    offered = people_facets.facet_values(ctx, me.org_id)
    choices = [(name, people_facets.LABELS[name], offered.get(name, []), facets.get(name, ""))
               for name in people_facets.FACETS if offered.get(name) or facets.get(name)]  # fmt: skip
    return render(
        request, "people.html", result=result, status=status, search=search, department=department or "",
        team=team, team_name=team_name, departments=depts, managers=managers, facets=facets, facet_choices=choices,
        pages=page_count(result.total, result.per_page),
        query=lambda **kw: urlencode({k: v for k, v in {**base, **kw}.items() if v not in ("", None)}),
    )  # fmt: skip


def _person_form_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {f: text(form, f, 400) for f in PERSON_FIELDS}
    values["departments"] = [d for d in text(form, "departments", 2000).split(",") if d.strip()]
    return values


@router.get("/people/new")
def person_new(request: Request, me: Principal = Depends(require_super_admin)) -> Response:
    return render(request, "person_new.html", values={}, errors={})


@router.post("/people/new")
async def person_create(request: Request, me: Principal = Depends(require_super_admin)) -> Response:
    form = await form_of(request)
    values = _person_form_values(form)
    roles = [r for r in ("super_admin", "it_admin") if form.get(f"role_{r}")]
    shown = {**values, "departments": ", ".join(values["departments"]), "roles": roles}
    try:
        pid = people.add_person(ctx_of(request), me.org_id, me.actor, {**values, "roles": roles})
    except ValidationError as exc:
        return render(request, "person_new.html", 422, values=shown, errors=exc.errors)
    except PermissionDeniedError as exc:
        return render(request, "person_new.html", 403, values=shown, errors={"roles": exc.message})
    flash(request, f"{values['display_name'] or values['email']} was added. Complete their details below.")
    return redirect(f"/people/{pid}?edit=1")  # the editor open: adding someone usually goes on to a team


def _person_page(request: Request, me: Principal, person_id: int, status: int = 200, **extra: Any) -> HTMLResponse:
    ctx = ctx_of(request)
    person = people.visible(people.get_person(ctx, me.org_id, person_id), admin=me.is_admin)
    trail = audit.list_entries(ctx, me.org_id, person_id=person_id, limit=200) if me.is_admin else []
    moved = {int(v) for a in trail if a.get("field") == "manager" for v in (a.get("old"), a.get("new"))
             if isinstance(v, str) and v.isdigit()}  # fmt: skip
    names = people.names_for_ids(ctx, me.org_id, sorted(moved))
    reports = people.list_people(ctx, me.org_id, status=None, manager_id=person_id, per_page=20)
    sync_on = connection.status(ctx, me.org_id).connected
    values = dict(extra.pop("values", None) or person)
    values["departments"] = ", ".join(values.get("departments") or [])
    editing = me.is_super_admin
    manager = people.get_person(ctx, me.org_id, person["manager_id"]) if editing and person.get("manager_id") else None
    extra.setdefault("manager_email", manager["email"] if manager else "")
    return render(
        request, "person.html", status, person=person, trail=[present.audit_row(a, names) for a in trail],
        reports=reports, sync_on=sync_on, values=values,
        editor_open=bool(extra.get("errors")) or request.query_params.get("edit") == "1",
        managers=people.managers(ctx, me.org_id) if editing else [], more=people.more_facts(ctx, me.org_id, person),
        **extra,
    )  # fmt: skip


def person_id_of(raw: str) -> int:
    """A person id from the URL; anything else is the same "no such person" as an unknown id."""
    pid = to_int(raw)
    if pid is None:
        raise NotFoundError("There is no such person.")
    return pid


@router.get("/people/{person_id}")
def person_page(request: Request, person_id: str, me: Principal = Depends(require_user)) -> Response:
    pid = person_id_of(person_id)
    return _person_page(request, me, pid)


@router.post("/people/{person_id}/edit")
async def person_edit(request: Request, person_id: str, me: Principal = Depends(require_super_admin)) -> Response:
    form = await form_of(request)
    pid = person_id_of(person_id)
    values = _person_form_values(form)
    try:
        people.edit_person(ctx_of(request), me.org_id, me.actor, pid, values)
    except ValidationError as exc:
        return _person_page(request, me, pid, 422, errors=exc.errors, values=values)
    flash(request, "Saved.")
    return redirect(f"/people/{pid}")


@router.post("/people/{person_id}/move")
async def person_move(request: Request, person_id: str, me: Principal = Depends(require_super_admin)) -> Response:
    form = await form_of(request)
    pid = person_id_of(person_id)
    ctx = ctx_of(request)
    manager_email = text(form, "manager_email", 320).strip()
    manager_id: int | None = None
    try:
        if manager_email:
            mgr = people.find_by_email(ctx, me.org_id, manager_email)
            if mgr is None:
                raise ValidationError({"manager_id": f"Nobody in this organisation has the e-mail {manager_email}."})
            manager_id = int(mgr["id"])
        people.move_person(ctx, me.org_id, me.actor, pid, manager_id)
    except ValidationError as exc:
        return _person_page(request, me, pid, 422, errors=exc.errors, manager_email=manager_email)
    flash(request, "Moved to the new team." if manager_id else "Moved to the top of the organisation.")
    return redirect(f"/people/{pid}")


@router.post("/people/{person_id}/status")
async def person_status(request: Request, person_id: str, me: Principal = Depends(require_super_admin)) -> Response:
    form = await form_of(request)
    pid = person_id_of(person_id)
    target = {"archive": "archived", "restore": "active", "pause": "paused"}.get(text(form, "action", 16))
    if target is None:
        raise ValidationError({"action": "Choose Archive, Restore or Pause."})
    people.set_status(ctx_of(request), me.org_id, me.actor, pid, target)
    flash(request, {"archived": "Archived.", "active": "Restored.", "paused": "Paused."}[target])
    return redirect(f"/people/{pid}")
