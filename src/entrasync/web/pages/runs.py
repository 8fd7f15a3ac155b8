"""Page: one refresh run (spec §4.8): who triggered it, when, its outcome, and its changes by kind, paged."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from entrasync.errors import NotFoundError
from entrasync.services import people, review, runs
from entrasync.web.auth import Principal, require_reviewer
from entrasync.web.forms import to_int
from entrasync.web.pages.common import PER_PAGE, ctx_of, page_count
from entrasync.web.render import render
from entrasync.web.review_view import change_views

router = APIRouter(include_in_schema=False)
# The run page's filters: every change, one kind, or the rows that are not changes (kept, conflicts,
# overridden). Each filter is (label, kinds, decisions).
FILTERS: dict[str, tuple[str, tuple[str, ...] | None, tuple[str, ...] | None]] = {
    "all": ("All changes", None, review.DECIDABLE_VALUES),
    "create": ("New", ("create",), review.DECIDABLE_VALUES),
    "restore": ("Restored", ("restore",), review.DECIDABLE_VALUES),
    "update": ("Updated", ("update",), review.DECIDABLE_VALUES),
    "move": ("Moved", ("move",), review.DECIDABLE_VALUES),
    "archive": ("Archived", ("archive",), review.DECIDABLE_VALUES),
    "rejected": ("Rejected", None, ("rejected",)),
    "notes": ("Kept, conflicts, not proposed again", None, review.NOTE_DECISIONS),
}


@router.get("/user-sync/runs/{run_id}")
def run_page(request: Request, run_id: str, me: Principal = Depends(require_reviewer)) -> Response:
    rid = to_int(run_id)
    if rid is None:
        raise NotFoundError("There is no such run.")
    ctx = ctx_of(request)
    run = runs.run_header(ctx, me.org_id, rid)
    summary = review.plan_summary(ctx, me.org_id, rid)
    q = request.query_params
    show = q.get("show", "all")
    if show not in FILTERS:
        show = "all"
    page = to_int(q.get("page"), 1, hi=10**6) or 1
    _label, kinds, decisions = FILTERS[show]
    counts = {key: summary.count(kinds=k, decisions=d) for key, (_l, k, d) in FILTERS.items()}
    found, total = review.change_page(ctx, me.org_id, rid, kinds=kinds, decisions=decisions, page=page,
                                      per_page=PER_PAGE, total=counts[show])  # fmt: skip
    who = [str(run["triggered_by"])] if run.get("triggered_by") else []
    applied_by = run.get("applied_by")  # another change adds who applied a reviewed plan, and when
    if applied_by:
        who.append(str(applied_by))
    return render(
        request, "run.html", run=run, summary=summary, rows=change_views(found), total=total, page=page,
        pages=page_count(total), show=show, filters=FILTERS, counts=counts,
        names=people.names_for_emails(ctx, me.org_id, who),
        page_href=lambda n: f"/user-sync/runs/{rid}?" + urlencode({"show": show, "page": n}),
    )  # fmt: skip
