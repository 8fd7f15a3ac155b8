"""API: sync settings, the connection, refreshes and the plan under review."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from entrasync.errors import NotFoundError, ValidationError
from entrasync.services import connection, review, runs, sync_settings
from entrasync.web.api.deps import (
    AdminScope,
    After,
    Ctx,
    Integrator,
    Limit,
    Reviewer,
    SearchText,
    Write,
    error_doc,
)
from entrasync.web.api.schemas import (
    ApplyBody,
    ApplyOut,
    ConnectBody,
    ConnectionOut,
    ConnectionTestBody,
    ConnectionTestOut,
    DecisionsBody,
    DecisionsOut,
    PlanOut,
    RefreshOut,
    RefreshStarted,
    SettingsBody,
    SettingsOut,
    SettingsSaved,
)
from entrasync.web.jobs import start_refresh

router = APIRouter()


@router.get("/settings", response_model=SettingsOut, tags=["sync"], dependencies=[AdminScope])
def get_settings(ctx: Ctx, me: Integrator) -> dict[str, Any]:
    return sync_settings.load(ctx, me.org_id).public()


@router.put("/settings", response_model=SettingsSaved, tags=["sync"], dependencies=[Write, AdminScope])
def put_settings(ctx: Ctx, body: SettingsBody, me: Integrator) -> dict[str, Any]:
    """Change some settings (the others stay). A Graph filter or group ids are checked against Graph."""
    changes = body.model_dump(exclude_unset=True)
    if body.mapping is not None:
        changes["mapping"] = {k: v.model_dump(exclude_unset=True) for k, v in body.mapping.items()}
    for key, value in changes.items():
        if value is None and key != "recipient_id":
            raise ValidationError({key: "Give a value (null is not allowed here)."})
    saved, facts = sync_settings.save(ctx, me.org_id, me.actor, changes)
    return {
        "settings": saved.public(),
        "changed": facts.get("changed", []),
        "matching_users": facts.get("matching_users"),
        "warning": facts.get("warning"),
    }


@router.get("/connection", response_model=ConnectionOut, tags=["connection"], dependencies=[AdminScope])
def get_connection(ctx: Ctx, me: Integrator) -> dict[str, Any]:
    return connection.status(ctx, me.org_id).public()


@router.post("/connection", response_model=ConnectionOut, tags=["connection"], dependencies=[Write, AdminScope])
def connect(ctx: Ctx, body: ConnectBody, me: Integrator) -> dict[str, Any]:
    """Headless connect (client credentials) with the caller's app registration: tenant id, client id
    and client secret or certificate (PEM with its private key). The credential is verified against Graph,
    stored encrypted and never returned."""
    creds = connection.validate_credentials(body.tenant_id, body.client_id, body.client_secret, body.client_certificate)
    return connection.connect(ctx, me.org_id, me.actor, creds, new_tenant=body.new_tenant).public()


@router.post("/connection/test", response_model=ConnectionTestOut, tags=["connection"], dependencies=[Write])
def test_connection(ctx: Ctx, body: ConnectionTestBody, me: Integrator) -> dict[str, Any]:
    """Try a credential (or the stored one): token, permissions, user count. Stores nothing."""
    creds = None
    if body.tenant_id or body.client_id or body.client_secret or body.client_certificate:
        creds = connection.validate_credentials(
            body.tenant_id or "", body.client_id or "", body.client_secret, body.client_certificate
        )
    return connection.test(ctx, me.org_id, creds)


@router.delete("/connection", response_model=ConnectionOut, tags=["connection"], dependencies=[Write, AdminScope])
def disconnect(ctx: Ctx, me: Integrator) -> dict[str, Any]:
    """Forget tenant, secret and delta state. Archives nobody."""
    return connection.disconnect(ctx, me.org_id, me.actor).public()


WAIT_SECONDS = 300.0


@router.post(
    "/refresh",
    tags=["sync"],
    dependencies=[Write],
    response_model=RefreshOut,
    responses={
        202: {"model": RefreshStarted, "description": "Queued or still running; poll `/runs/{run_id}/progress`"},
        409: error_doc("A refresh is already queued or running, or Entra is not connected"),
    },
)
def refresh(request: Request, ctx: Ctx, me: Integrator, wait: bool = True) -> JSONResponse:
    """Queue a refresh (read Entra, plan, and apply in Auto-sync unless held); a worker runs it.

    ``wait=true`` (the default) answers when the run ends (up to 5 minutes, then 202 as below);
    ``wait=false`` answers 202 with the run id at once. A second refresh while one is queued or running
    is refused with 409, naming that run.
    """
    run_id = start_refresh(request, me.org_id, me.actor, "api")
    result = runs.wait_for(ctx, me.org_id, run_id, timeout=WAIT_SECONDS) if wait else None
    if result is None:
        return JSONResponse({"run_id": run_id, "outcome": "running"}, status_code=202)
    return JSONResponse(result)


@router.get("/plan", response_model=PlanOut, tags=["sync"])
def get_plan(
    ctx: Ctx,
    me: Reviewer,
    tab: Literal["entra_only", "directory_only", "differences"] | None = None,
    search: SearchText = None,
    after: After = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    """The plan waiting for review (Manual comparison, or held by the safety guard), its changes paged."""
    run = review.pending_run(ctx, me.org_id)
    if run is None:
        raise NotFoundError(review.NO_PLAN)
    pg = runs.changes_page(ctx, me.org_id, int(run["id"]), tab=tab, search=search, after=after, limit=limit)
    counts = review.tab_counts(ctx, me.org_id, run["id"])
    counts["matched"] = int((run.get("counts") or {}).get("matched", 0))
    return {"run": run, "tab_counts": counts, **pg.public()}


@router.post("/plan/decisions", response_model=DecisionsOut, tags=["sync"], dependencies=[Write])
def decide(ctx: Ctx, body: DecisionsBody, me: Reviewer) -> dict[str, Any]:
    run_id = body.run_id
    if run_id is None:
        run = review.pending_run(ctx, me.org_id)
        if run is None:
            raise NotFoundError(review.NO_PLAN)
        run_id = int(run["id"])
    return {"run_id": run_id, "updated": review.decide(ctx, me.org_id, run_id, body.change_ids, body.decision)}


@router.post("/plan/apply", response_model=ApplyOut, tags=["sync"], dependencies=[Write])
def apply(ctx: Ctx, body: ApplyBody, me: Reviewer) -> dict[str, Any]:
    """Apply the waiting plan: pending and accepted changes apply, rejected ones become overrides."""
    return review.apply_plan(ctx, me.org_id, me.actor, run_id=body.run_id, reject=body.reject).public()
