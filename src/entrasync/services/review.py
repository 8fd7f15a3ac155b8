"""Reviewing a plan (§4.5): the waiting plan's tabs, decisions per change or per tab, and Apply.

Apply is one transaction (§4.7): pending and accepted changes are written, rejected ones become
overrides tied to the exact Entra data behind them; a plan the directory moved away from is refused,
and applying an applied plan again is a no-op that says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from entrasync.adapters.db.audit_repo import AuditEntry
from entrasync.adapters.db.overrides_repo import NewOverride
from entrasync.adapters.db.plan_repo import TAB_NOTES, TABS, PlanRow, row_dict
from entrasync.adapters.db.uow import UnitOfWork
from entrasync.domain import overrides
from entrasync.domain.model import ChangeKind
from entrasync.domain.states import Decision, PlanState, RunOutcome
from entrasync.errors import ConflictError, NotFoundError, StalePlanError
from entrasync.services.context import Actor, AppContext

__all__ = ["TABS", "TAB_NOTES", "ApplyResult", "apply_plan", "current_run", "decide", "list_overrides",
           "pending_run", "plan_changes", "revoke_override", "tab_change_ids", "tab_counts"]  # fmt: skip

MAX_PER_PAGE = 500
NO_PLAN = "No plan is waiting for review. Run Refresh to compute one."


@dataclass
class ApplyResult:
    run_id: int
    applied: dict[str, int]
    rejected: int
    already_applied: bool = False

    def public(self) -> dict[str, Any]:
        return asdict(self)


def pending_run(ctx: AppContext, org_id: int) -> dict[str, Any] | None:
    with ctx.read() as uow:
        return uow.runs.pending(org_id)


def current_run(ctx: AppContext, org_id: int) -> dict[str, Any] | None:
    """The run the User Sync page shows: the plan waiting for review, else the newest finished run."""
    with ctx.read() as uow:
        return uow.runs.pending(org_id) or uow.runs.newest(org_id, finished=True)


def _require_pending(
    uow: UnitOfWork, org_id: int, run_id: int | None, *, allow_applied: bool = False
) -> dict[str, Any]:
    """The run whose plan waits for review. With ``allow_applied`` (apply is idempotent) an already
    applied plan is returned too: by id, or, without an id, when it is the newest run."""
    if run_id is None:
        run = uow.runs.pending(org_id)
        if run is None and allow_applied:
            newest = uow.runs.newest(org_id)
            if newest is not None and newest["plan_state"] == PlanState.APPLIED.value:
                return newest
        if run is None:
            raise NotFoundError(NO_PLAN)
        return run
    run = uow.runs.get(org_id, run_id)
    if run is None:
        raise NotFoundError(f"No run {run_id} in this organisation.")
    if run["plan_state"] == PlanState.SUPERSEDED.value:
        raise StalePlanError(
            f"The plan of run {run_id} was replaced by a newer refresh. Review the newest plan instead."
        )
    if run["plan_state"] == PlanState.APPLIED.value and allow_applied:
        return run
    if run["plan_state"] != PlanState.PENDING.value:
        raise NotFoundError(f"Run {run_id} has no plan waiting for review.")
    return run


def decide(ctx: AppContext, org_id: int, run_id: int, change_ids: Iterable[int], decision: str) -> int:
    """Mark changes of a waiting plan accepted or rejected (the UI's per-change and per-tab buttons)."""
    if decision not in (Decision.ACCEPTED, Decision.REJECTED, Decision.PENDING):
        raise ConflictError("A decision is accepted, rejected or pending.")
    ids = list(change_ids)
    with ctx.write() as uow:
        run = _require_pending(uow, org_id, run_id)
        return uow.plans.decide(int(run["id"]), ids, Decision(decision))


def _stale(uow: UnitOfWork, org_id: int, run: dict[str, Any], rows: list[PlanRow]) -> list[str]:
    """The people this plan changes who changed after it was computed (§4.5), and e-mails of its
    joiners that someone took meanwhile. An edit by hand to anyone else does not make it stale."""
    ids = [r.person_id for r in rows if r.person_id is not None]
    names = uow.people.changed_since(org_id, ids, int(run["base_version"] or 0))
    emails = [r.target.email for r in rows if r.kind is ChangeKind.CREATE and r.target is not None]
    names += [f"{e} (added since)" for e in uow.people.emails_taken(org_id, emails)]
    return names


def _overrides_of(rows: list[PlanRow], run_id: int) -> list[NewOverride]:
    out: list[NewOverride] = []
    for r in rows:
        for part in overrides.parts_of(r):
            out.append(NewOverride(part, str(r.kind), overrides.label_of(r, part), r.person_id, run_id))
    return out


def apply_plan(
    ctx: AppContext, org_id: int, actor: Actor, *, run_id: int | None = None, reject: Iterable[int] = ()
) -> ApplyResult:
    """Apply a waiting (or held) plan in one transaction: pending and accepted changes are applied,
    rejected ones (plus ``reject``) become overrides. A plan that a person it changes moved away from is
    refused, naming them; applying twice is a no-op."""
    now = ctx.now()
    reject_ids = set(reject)
    with ctx.write() as uow:
        uow.orgs.lock(org_id)
        run = _require_pending(uow, org_id, run_id, allow_applied=True)
        rid = int(run["id"])
        if run["plan_state"] == PlanState.APPLIED.value:
            return ApplyResult(run_id=rid, applied={}, rejected=0, already_applied=True)
        rows = uow.plans.decidable(rid)
        unknown = reject_ids - {r.id for r in rows}
        if unknown:
            raise NotFoundError(f"No change {', '.join(map(str, sorted(unknown)))} in the plan of run {rid}.")
        rejected = [r for r in rows if r.id in reject_ids or r.decision is Decision.REJECTED]
        refused = {r.id for r in rejected}
        accepted = [r for r in rows if r.id not in refused]
        stale = _stale(uow, org_id, run, accepted)
        if stale:
            more = f" and {len(stale) - 5} more" if len(stale) > 5 else ""
            raise StalePlanError(
                f"Since run {rid} computed this plan, {', '.join(stale[:5])}{more} changed, so the plan may no "
                "longer be right for them. Run Refresh again and review the new plan."
            )
        version = uow.orgs.bump_version(org_id)
        uow.expect_rows(len(accepted) * 3)  # people, audit and change-feed rows
        # The audit names both (§1): "applied run N, by P".
        who = Actor(label=f"applied run {rid}, by {actor.label}", person_id=actor.person_id, run_id=rid)
        applied = uow.directory.apply(org_id, accepted, who, now, version=version)
        # Rejections become overrides, tied to the exact Entra data that produced them; each is audited.
        new = uow.overrides.add(org_id, _overrides_of(rejected, rid), actor.label, now)
        uow.audit.write(org_id, actor, now, (
            AuditEntry("override", "reject", o.person_id, o.key.part, None, o.label) for o in new))  # fmt: skip
        uow.plans.mark([r.id for r in accepted], Decision.ACCEPTED, True)
        uow.plans.mark([r.id for r in rejected], Decision.REJECTED, False)
        counts = {**applied.counts, "rejected": len(rejected), "overridden": int((run.get("counts") or {}).get(
            "overridden", 0))}  # fmt: skip
        uow.runs.update(rid, plan_state=PlanState.APPLIED.value, outcome=RunOutcome.APPLIED.value,
                        applied_counts=counts, applied_by=actor.label, applied_at=now)  # fmt: skip
    return ApplyResult(run_id=rid, applied=applied.counts, rejected=len(rejected))


def list_overrides(ctx: AppContext, org_id: int, *, person_id: int | None = None) -> list[dict[str, Any]]:
    """The organisation's overrides (§4.5): person, field or kind, Entra's value, who rejected it, when."""
    with ctx.read() as uow:
        return uow.overrides.page(org_id, person_id=person_id)


def revoke_override(ctx: AppContext, org_id: int, actor: Actor, override_id: int) -> dict[str, Any]:
    """Revoke one override: the next refresh proposes that change again. Audited."""
    with ctx.write() as uow:
        found = uow.overrides.get(org_id, override_id)
        if found is None:
            raise NotFoundError(f"No override {override_id} in this organisation.")
        uow.overrides.delete(org_id, override_id)
        uow.audit.write(org_id, actor, ctx.now(), [AuditEntry("override", "revoke", found["person_id"], found["part"],
                                                              found["label"], None)])  # fmt: skip
    return found


def plan_changes(
    ctx: AppContext,
    org_id: int,
    run_id: int,
    *,
    tab: str | None = None,
    search: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[dict[str, Any]], int]:
    """One page of a run's stored changes, all of them or one tab's (its changes, then its notes)."""
    if tab is not None and tab not in TABS:
        raise NotFoundError(f"No tab '{tab}'; tabs are {', '.join(TABS)} and matched.")
    kinds = TABS[tab] + TAB_NOTES[tab] if tab is not None else None
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    with ctx.read() as uow:
        rows, total = uow.plans.page(org_id, run_id, kinds=kinds, search=search, page=max(page, 1), per_page=per_page)
    return [row_dict(r) for r in rows], total


def tab_counts(ctx: AppContext, org_id: int, run_id: int) -> dict[str, int]:
    """Changes per tab (overridden changes, kept admins and conflicts are listed but not counted)."""
    with ctx.read() as uow:
        return uow.plans.tab_counts(org_id, run_id)


def tab_change_ids(ctx: AppContext, org_id: int, run_id: int, tab: str) -> list[int]:
    """Ids of the decidable changes in one tab (what Accept all / Reject all act on)."""
    kinds = TABS.get(tab)
    if kinds is None:
        raise NotFoundError(f"No tab '{tab}'.")
    with ctx.read() as uow:
        return uow.plans.tab_change_ids(org_id, run_id, kinds)


def matched(
    ctx: AppContext, org_id: int, run: dict[str, Any], *, search: str | None, page: int, per_page: int
) -> tuple[list[dict[str, Any]], int]:
    """Linked people the run proposes no change for (the Matched tab)."""
    planned = (run.get("counts") or {}).get("matched")
    with ctx.read() as uow:
        return uow.plans.matched(
            org_id, int(run["id"]), planned_total=planned if isinstance(planned, int) else None, search=search,
            page=max(page, 1), per_page=max(1, min(per_page, MAX_PER_PAGE)),
        )  # fmt: skip


# ---- reads for the review and run pages ---------------------------------------------------------------

CHANGE_KINDS = ("create", "restore", "update", "move", "archive")
DECIDABLE_VALUES = (Decision.PENDING.value, Decision.ACCEPTED.value, Decision.REJECTED.value)
NOTE_DECISIONS = (Decision.OVERRIDDEN.value, Decision.KEPT.value, Decision.CONFLICT.value)  # listed, not counted
LARGE_PLAN = 50  # changes: Apply in the UI asks for confirmation from here (and always for a held plan)
LARGE_ARCHIVE = 5  # archives: the guard's own floor (§4.6)


@dataclass(frozen=True)
class PlanSummary:
    """Counts of one run's rows by kind and decision (one GROUP BY), for the tabs, Apply and the run page."""

    rows: tuple[tuple[str, str, bool, int], ...]  # (kind, decision, applied, count)

    def count(self, *, kinds: Iterable[str] | None = None, decisions: Iterable[str] | None = None,
              applied: bool | None = None) -> int:  # fmt: skip
        ks = set(kinds) if kinds is not None else None
        ds = set(decisions) if decisions is not None else None
        return sum(
            n
            for k, d, a, n in self.rows
            if (ks is None or k in ks) and (ds is None or d in ds) and (applied is None or a is applied)
        )

    def tab_counts(self) -> dict[str, int]:
        """What each tab's (N) counts: its decidable changes (as :func:`tab_counts`)."""
        return {tab: self.count(kinds=kinds, decisions=DECIDABLE_VALUES) for tab, kinds in TABS.items()}

    def tab_notes(self) -> dict[str, int]:
        """Rows a tab lists apart, not counted: overridden changes, kept admins, conflicts."""
        return {tab: self.count(kinds=TABS[tab] + TAB_NOTES[tab], decisions=NOTE_DECISIONS) for tab in TABS}

    def to_apply(self) -> dict[str, int]:
        """Per kind, what Apply would write now: pending (undecided) and accepted changes."""
        return {k: self.count(kinds=(k,), decisions=("pending", "accepted")) for k in CHANGE_KINDS}

    @property
    def undecided(self) -> int:
        return self.count(kinds=CHANGE_KINDS, decisions=("pending",))

    @property
    def rejected(self) -> int:
        return self.count(kinds=CHANGE_KINDS, decisions=("rejected",))

    def applied(self) -> dict[str, int]:
        return {k: self.count(kinds=(k,), applied=True) for k in CHANGE_KINDS}

    def proposed(self) -> dict[str, int]:
        """Per kind, every change the run proposed (decided or not; overridden ones apart)."""
        return {k: self.count(kinds=(k,), decisions=DECIDABLE_VALUES) for k in CHANGE_KINDS}

    def needs_confirmation(self, run: dict[str, Any]) -> bool:
        """§4.5: applying a held or large plan in the UI asks for confirmation, with its counts."""
        todo = self.to_apply()
        return (
            run.get("outcome") == RunOutcome.HELD
            or sum(todo.values()) >= LARGE_PLAN
            or todo["archive"] >= LARGE_ARCHIVE
        )


def plan_summary(ctx: AppContext, org_id: int, run_id: int) -> PlanSummary:
    with ctx.read() as uow:
        return PlanSummary(tuple(uow.plans.summary(org_id, run_id)))


def change_page(
    ctx: AppContext,
    org_id: int,
    run_id: int,
    *,
    kinds: Iterable[str] | None,
    decisions: Iterable[str] | None,
    search: str | None = None,
    page: int = 1,
    per_page: int = 50,
    total: int | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One page of a run's changes of some kinds and decisions (a tab's decisions, its notes, a run page's
    kind), with what the page shows of the people they name: see :func:`_names`."""
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    with ctx.read() as uow:
        rows, found = uow.plans.page_filtered(
            org_id, run_id, kinds=kinds, decisions=decisions, search=search, page=max(page, 1), per_page=per_page,
            total=total,
        )  # fmt: skip
        items = [row_dict(r) for r in rows]
        _names(uow, org_id, run_id, items)
    return items, found


def _names(uow: UnitOfWork, org_id: int, run_id: int, items: list[dict[str, Any]]) -> None:
    """Attach the names a page of changes shows, in at most four queries for the whole page:
    ``person`` (name and e-mail of the person a kept or conflict row names), ``manager_names`` (the
    e-mails in manager diffs, lower-cased, -> name) and ``target_manager`` (a joiner's manager, from the
    directory or, when the manager joins in the same plan, from that plan)."""
    missing = [
        int(i["person_id"]) for i in items if i.get("person_id") and not (i.get("display_name") and i.get("email"))
    ]
    people = uow.people.names_by_id(org_id, missing) if missing else {}
    emails = {str(v) for i in items for d in i["diffs"] if d["field"] == "manager" for v in (d["old"], d["new"]) if v}
    by_email = uow.people.names_by_email(org_id, emails) if emails else {}
    mgr_ids = {str(i["target"]["manager_entra_id"]) for i in items
               if i["kind"] == "create" and i.get("target") and i["target"].get("manager_entra_id")}  # fmt: skip
    by_entra = uow.people.names_by_entra_id(org_id, mgr_ids) if mgr_ids else {}
    joiners = uow.plans.joiner_names(org_id, run_id, mgr_ids - set(by_entra)) if mgr_ids - set(by_entra) else {}
    for i in items:
        i["person"] = people.get(int(i["person_id"])) if i.get("person_id") else None
        i["manager_names"] = {e: v["name"] for e, v in by_email.items()}
        mid = (i.get("target") or {}).get("manager_entra_id") if i["kind"] == "create" else None
        if mid and mid in by_entra:
            i["target_manager"] = {"id": by_entra[mid]["id"], "name": by_entra[mid]["name"], "joiner": False}
        elif mid and mid in joiners:
            i["target_manager"] = {"id": None, "name": joiners[mid], "joiner": True}
        else:
            i["target_manager"] = None
