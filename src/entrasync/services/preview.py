"""Dry run and Preview (spec §12, §3): the plan a refresh would make, stored nowhere.

``refresh --dry-run`` plans with the saved settings; Sync Settings' Preview with the unsaved ones
(validated exactly as a Save: :func:`entrasync.services.sync_settings.validate`). Both read Entra in
full (no delta link is used or moved), outside any transaction, then plan in one read transaction with
the pure planner: no run, no plan, no delta state, no audit, no budget rows (the client is the plain
one the settings checks use). The plan is the one a refresh with those settings would compute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from entrasync.adapters.graph.client import GraphClient
from entrasync.adapters.graph.errors import GraphError
from entrasync.adapters.graph.reader import fetch_snapshot, mapper_for
from entrasync.domain.model import Change, Conflict, FieldDiff
from entrasync.domain.planner import plan as make_plan
from entrasync.domain.rest import counts as plan_counts
from entrasync.domain.settings import SyncSettings
from entrasync.errors import UpstreamError
from entrasync.services import connection, sync_settings
from entrasync.services.context import AppContext

__all__ = ["FIRST_CHANGES", "PlanPreview", "change_public", "dry_run", "preview_settings"]

FIRST_CHANGES = 20


def _value(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def diff_public(d: FieldDiff) -> dict[str, Any]:
    return {"field": d.field, "old": _value(d.old), "new": _value(d.new), "manual_edit": d.manual_edit}


def change_public(c: Change) -> dict[str, Any]:
    """One change as the CLI and the API show it: who, what, why, and the field diffs."""
    target = c.target
    return {
        "kind": c.kind.value,
        "reason": c.reason.value,
        "subject": c.subject,
        "fingerprint": c.fingerprint,
        "person_id": c.person_id,
        "entra_id": c.entra_id,
        "display_name": c.display_name,
        "email": c.email,
        "diffs": [diff_public(d) for d in c.diffs],
        "manual_edits": [d.field for d in c.manual_edits],
        "target_email": target.email if target is not None else None,
    }


def conflict_public(c: Conflict) -> dict[str, Any]:
    return {"email": c.email, "entra_ids": list(c.entra_ids), "person_id": c.person_id}


@dataclass
class PlanPreview:
    counts: dict[str, int]
    changes: list[dict[str, Any]]  # the first FIRST_CHANGES, in the plan's order
    total_changes: int
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    held: bool = False
    hold_reason: str | None = None
    graph_requests: int = 0
    settings: dict[str, Any] | None = None  # Preview: the settings previewed (as a Save would store them)
    matching_users: int | None = None
    warning: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "dry_run": True,
            "counts": self.counts,
            "total_changes": self.total_changes,
            "changes": self.changes,
            "conflicts": self.conflicts,
            "held": self.held,
            "hold_reason": self.hold_reason,
            "graph_requests": self.graph_requests,
            "settings": self.settings,
            "matching_users": self.matching_users,
            "warning": self.warning,
        }


def _plan(ctx: AppContext, org_id: int, settings: SyncSettings, client: GraphClient | None, first: int) -> PlanPreview:
    own = client is None
    gclient = client or connection.connected_client(ctx, org_id)
    try:
        start = gclient.request_count
        groups = settings.active_group_ids
        result = fetch_snapshot(
            gclient,
            graph_filter=settings.active_graph_filter,
            group_ids=list(groups) if groups is not None else None,
            cursor=None,
            mapper=mapper_for(settings.field_maps()),  # the mapping of the settings previewed (§12)
        )
        requests = gclient.request_count - start
    except GraphError as exc:
        raise UpstreamError(f"Reading Microsoft Entra ID failed: {exc}") from exc
    finally:
        if own:
            gclient.close()
    with ctx.read() as uow:
        people = uow.people.load_records(org_id)
        overrides = uow.overrides.load(org_id)
    the_plan = make_plan(result.snapshot, people, settings.scope(), overrides)
    return PlanPreview(
        counts=plan_counts(the_plan),
        changes=[change_public(c) for c in the_plan.changes[:first]],
        total_changes=len(the_plan.changes),
        conflicts=[conflict_public(c) for c in the_plan.conflicts[:first]],
        held=the_plan.held,
        hold_reason=the_plan.hold_reason,
        graph_requests=requests,
    )


def dry_run(
    ctx: AppContext, org_id: int, *, client: GraphClient | None = None, first: int = FIRST_CHANGES
) -> PlanPreview:
    """The plan a refresh would make now with the saved settings; stores nothing."""
    return _plan(ctx, org_id, sync_settings.load(ctx, org_id), client, first)


def preview_settings(
    ctx: AppContext,
    org_id: int,
    changes: dict[str, Any],
    *,
    probe: sync_settings.GraphProbe | None = sync_settings.DEFAULT_PROBE,
    client: GraphClient | None = None,
    first: int = FIRST_CHANGES,
) -> PlanPreview:
    """The plan the settings ``changes`` would produce once saved (validated as a Save; raises
    ValidationError the same way); saves nothing."""
    new, facts = sync_settings.validate(ctx, org_id, changes, probe)
    out = _plan(ctx, org_id, new, client, first)
    out.settings = new.public()
    out.matching_users = facts.get("matching_users")
    out.warning = facts.get("warning")
    return out
