"""Page: explain one person or Entra user (spec §12), opened from the person's page. Read-only."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from entrasync.errors import EntrasyncError
from entrasync.services import explain
from entrasync.web.auth import Principal, require_admin
from entrasync.web.pages.common import ctx_of
from entrasync.web.render import render

router = APIRouter(include_in_schema=False)


@router.get("/people/explain")
def explain_page(request: Request, me: Principal = Depends(require_admin)) -> Response:
    q = (request.query_params.get("q") or "").replace("\x00", "").strip()[:320]
    data = problem = None
    status = 200
    if q:
        try:
            data = explain.explain(ctx_of(request), me.org_id, q).public()
        except EntrasyncError as exc:
            problem, status = exc.message, exc.status
    return render(request, "explain.html", status, q=q, data=data, problem=problem)
