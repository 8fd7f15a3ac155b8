"""Page: the organisation chart (spec §7): a tree from the top, each team opened on demand.

Teams come from manager links only. The top of the organisation is everyone nobody manages, which
mixes three kinds of people the page shows apart: heads of teams (usually the CEO), synced people
whose Entra account has no manager, and people added by hand (such as the local admin).

Opening a team is a link that reloads the page with that team open (no JavaScript needed); app.js
turns it into a button that fetches just that team (``/organisation/team/{id}``) and inserts it. Each
team is one indexed query (``manager_id``), so the chart costs the same at 100,000 people.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from entrasync.errors import NotFoundError
from entrasync.services import people
from entrasync.web.auth import Principal, require_user
from entrasync.web.forms import to_int
from entrasync.web.pages.common import ctx_of
from entrasync.web.render import render, render_fragment

router = APIRouter(include_in_schema=False)
TEAM_LIMIT = 200  # direct reports listed under one manager; the rest are one link away (People, by team)


def _team(request: Request, me: Principal, manager_id: int) -> list[dict[str, Any]]:
    return people.team_tree(ctx_of(request), me.org_id, manager_id)[:TEAM_LIMIT]


@router.get("/organisation")
def organisation(request: Request, me: Principal = Depends(require_user)) -> Response:
    ctx = ctx_of(request)
    q = request.query_params
    root_id = to_int(q.get("root"))
    open_id = to_int(q.get("open"))
    root = people.get_person(ctx, me.org_id, root_id) if root_id else None
    trail = people.chain_of_command(ctx, me.org_id, root_id) if root_id else []
    top = None if root_id else people.top_of_organisation(ctx, me.org_id)
    nodes = _team(request, me, root_id) if root_id else (top.heads if top else [])
    # Open the teams on the way to ``open`` (the page without JavaScript opens one team per click).
    expanded: dict[int, list[dict[str, Any]]] = {}
    if open_id:
        path = [p["id"] for p in people.chain_of_command(ctx, me.org_id, open_id)] + [open_id]
        if root_id:
            path = path[path.index(root_id) + 1 :] if root_id in path else []
        for pid in path:
            expanded[int(pid)] = _team(request, me, int(pid))
    return render(request, "organisation.html", root=root, trail=trail, top=top, nodes=nodes, expanded=expanded,
                  open_id=open_id, team_limit=TEAM_LIMIT)  # fmt: skip


@router.get("/organisation/team/{person_id}")
def team_fragment(request: Request, person_id: str, me: Principal = Depends(require_user)) -> Response:
    """One manager's direct reports as a list fragment, for the chart's buttons (app.js)."""
    pid = to_int(person_id)
    if pid is None:
        raise NotFoundError("There is no such person.")
    everyone = people.team_tree(ctx_of(request), me.org_id, pid)
    return render_fragment(request, "_org_team.html", manager_id=pid, nodes=everyone[:TEAM_LIMIT],
                           reports=len(everyone), expanded={}, root=None)  # fmt: skip
