"""Stored plans (spec §4.4-§4.5): one row per change, overridden change, kept admin and conflict.

A 100,000-joiner first sync stores 100,000 rows, so :meth:`PlanRepo.store` builds each row as a tuple
in column order with its JSON already encoded, and writes them through the bulk path (COPY on
PostgreSQL, ``executemany`` on SQLite). Rows come back as :class:`PlanRow` for review and apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.bulk import CHUNK, bulk_insert_rows
from entrasync.adapters.db.people_reads import not_by_org
from entrasync.adapters.db.plan_targets import stored_target, target_json, target_of
from entrasync.adapters.db.search import contains
from entrasync.domain.model import Change, ChangeKind, Conflict, EntraUser, FieldDiff, Plan
from entrasync.domain.states import DECIDABLE, Decision

# The User Sync tabs (§4.4): the change kinds each tab counts and offers to accept or reject.
TABS: dict[str, tuple[str, ...]] = {
    "entra_only": ("create", "restore"),
    "directory_only": ("archive",),
    "differences": ("update", "move"),
}
# Rows a tab also lists, after its changes, that are not decisions: admins the sync keeps, and e-mail
# conflicts. They never count towards the tab's (N).
TAB_NOTES: dict[str, tuple[str, ...]] = {"entra_only": (), "directory_only": ("keep",), "differences": ("conflict",)}

_COLUMNS = (
    "run_id",
    "org_id",
    "kind",
    "subject",
    "person_id",
    "entra_id",
    "reason",
    "display_name",
    "email",
    "diffs",
    "target",
    "fingerprint",
    "decision",
    "applied",
)


@dataclass(frozen=True, slots=True)
class PlanRow:
    """A stored change as review and apply read it (the same attributes apply reads of a planner Change)."""

    id: int
    run_id: int
    kind: ChangeKind
    subject: str
    reason: str
    fingerprint: str
    decision: Decision
    applied: bool
    person_id: int | None
    entra_id: str | None
    display_name: str | None
    email: str | None
    diffs: tuple[FieldDiff, ...]
    target: EntraUser | None
    manager_id: int | None
    manager_entra_id: str | None


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def conflict_note(cf: Conflict) -> str:
    if len(cf.entra_ids) > 1:
        return f"{len(cf.entra_ids)} Entra users claim this e-mail: {', '.join(cf.entra_ids)}"
    return f"Entra user {cf.entra_ids[0]} claims an e-mail someone else in the directory holds"


def _row(r: Any) -> PlanRow:
    m = r._mapping
    target, manager_id = target_of(m["target"])
    diffs = tuple(FieldDiff(d[0], d[1], d[2], bool(d[3])) for d in (m["diffs"] or ()))
    return PlanRow(
        id=int(m["id"]),
        run_id=int(m["run_id"]),
        kind=ChangeKind(m["kind"]) if m["kind"] in _KINDS else m["kind"],
        subject=m["subject"],
        reason=m["reason"],
        fingerprint=m["fingerprint"],
        decision=Decision(m["decision"]),
        applied=bool(m["applied"]),
        person_id=m["person_id"],
        entra_id=m["entra_id"],
        display_name=m["display_name"],
        email=m["email"],
        diffs=diffs,
        target=target,
        manager_id=manager_id,
        manager_entra_id=target.manager_id if target is not None else None,
    )


_KINDS = frozenset(k.value for k in ChangeKind)


def row_dict(row: PlanRow) -> dict[str, Any]:
    """A stored change as the API, the CLI and the pages show it. An overridden change is reported as
    such (§4.5), with the kind it would have had beside it."""
    overridden = row.decision is Decision.OVERRIDDEN
    return {
        "overridden_kind": str(row.kind) if overridden else None,
        "id": row.id,
        "run_id": row.run_id,
        "kind": "overridden" if overridden else str(row.kind),
        "subject": row.subject,
        "reason": row.reason,
        "person_id": row.person_id,
        "entra_id": row.entra_id,
        "display_name": row.display_name,
        "email": row.email,
        "diffs": [{"field": d.field, "old": d.old, "new": d.new, "manual_edit": d.manual_edit} for d in row.diffs],
        "target": target_json(row.target, row.manager_id) if row.target is not None else None,
        "fingerprint": row.fingerprint,
        "decision": str(row.decision),
        "applied": row.applied,
    }


def _of_run(org_id: int, run_id: int) -> list[Any]:
    """A run's rows, the run checked once to be the organisation's (an uncorrelated EXISTS): ``org_id``
    stays out of the scan, so the (run_id, kind, id) index alone counts and pages a tab (at 100,000
    rows SQLite's count went from 41 ms to a few)."""
    pc, runs = t.plan_changes, t.runs
    return [pc.c.run_id == run_id, sa.exists().where(runs.c.id == run_id, runs.c.org_id == org_id)]


class PlanRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def store(self, org_id: int, run_id: int, plan: Plan, *, accept: bool = False) -> int:
        """Insert the plan's rows: changes first (``accept``: stored accepted and applied, for an apply
        in the same transaction), then overridden changes, kept admins and conflicts. Returns the count."""
        return bulk_insert_rows(self.conn, t.plan_changes, _COLUMNS, self._rows(org_id, run_id, plan, accept))

    def copy_standing(self, org_id: int, from_run: int, to_run: int) -> int:
        """A run at rest lists what its basis run listed beside the changes: overridden changes, kept admins,
        conflicts (one INSERT ... SELECT, no rows through Python). Returns the count."""
        pc = t.plan_changes
        standing = [Decision.OVERRIDDEN.value, Decision.KEPT.value, Decision.CONFLICT.value]
        cols = [c for c in _COLUMNS if c != "run_id"]
        src = (
            sa.select(sa.literal(to_run).label("run_id"), *[pc.c[c] for c in cols])
            .where(pc.c.run_id == from_run, pc.c.org_id == org_id, pc.c.decision.in_(standing))
            .order_by(pc.c.id)
        )
        return int(self.conn.execute(sa.insert(pc).from_select(["run_id", *cols], src)).rowcount or 0)

    def _rows(self, org_id: int, run_id: int, plan: Plan, accept: bool) -> Iterator[tuple[Any, ...]]:
        decision = Decision.ACCEPTED.value if accept else Decision.PENDING.value
        for c in plan.changes:
            yield self._change(run_id, org_id, c, decision, accept)
        for c in plan.overridden:
            yield self._change(run_id, org_id, c, Decision.OVERRIDDEN.value, False)
        for k in plan.kept:
            yield (
                run_id,
                org_id,
                "keep",
                f"p:{k.person_id}",
                k.person_id,
                None,
                "kept",
                None,
                None,
                _json([["note", None, k.reason, False]]),
                None,
                "-",
                Decision.KEPT.value,
                False,
            )
        for cf in plan.conflicts:
            # One Entra id fits the column; several are named in the note (spec §4.3: both ids).
            yield (
                run_id,
                org_id,
                "conflict",
                f"m:{cf.email.lower()}",
                cf.person_id,
                cf.entra_ids[0] if len(cf.entra_ids) == 1 else None,
                "conflict",
                None,
                cf.email,
                _json([["note", None, conflict_note(cf), False]]),
                None,
                "-",
                Decision.CONFLICT.value,
                False,
            )

    @staticmethod
    def _change(run_id: int, org_id: int, c: Change, decision: str, applied: bool) -> tuple[Any, ...]:
        diffs = _json([[d.field, d.old, d.new, d.manual_edit] for d in c.diffs]) if c.diffs else "[]"
        target = _json(stored_target(c.target, c.manager_id)) if c.target is not None else None
        return (
            run_id,
            org_id,
            c.kind.value,
            c.subject,
            c.person_id,
            c.entra_id,
            c.reason.value,
            c.display_name,
            c.email,
            diffs,
            target,
            c.fingerprint,
            decision,
            applied,
        )

    def decidable(self, run_id: int) -> list[PlanRow]:
        pc = t.plan_changes
        q = sa.select(pc).where(pc.c.run_id == run_id, pc.c.decision.in_([d.value for d in DECIDABLE]))
        return [_row(r) for r in self.conn.execute(q.order_by(pc.c.id))]

    def decide(self, run_id: int, change_ids: Sequence[int], decision: Decision) -> int:
        pc = t.plan_changes
        n = 0
        for i in range(0, len(change_ids), CHUNK):
            res = self.conn.execute(
                sa.update(pc)
                .where(
                    pc.c.run_id == run_id,
                    pc.c.id.in_(sa.bindparam("ids", expanding=True)),
                    pc.c.decision.in_([d.value for d in DECIDABLE]),
                )
                .values(decision=decision.value),
                {"ids": list(change_ids[i : i + CHUNK])},
            )
            n += int(res.rowcount)
        return n

    def mark(self, ids: Sequence[int], decision: Decision, applied: bool) -> None:
        pc = t.plan_changes
        for i in range(0, len(ids), CHUNK):
            self.conn.execute(
                sa.update(pc)
                .where(pc.c.id.in_(sa.bindparam("ids", expanding=True)))
                .values(decision=decision.value, applied=applied),
                {"ids": list(ids[i : i + CHUNK])},
            )

    def page(
        self, org_id: int, run_id: int, *, kinds: Iterable[str] | None, search: str | None, page: int, per_page: int,
        after_id: int | None = None,
    ) -> tuple[list[PlanRow], int]:  # fmt: skip
        """One page by id; ``after_id`` (the API's cursor) starts after that change, ``total`` counts all."""
        pc = t.plan_changes
        conds: list[Any] = _of_run(org_id, run_id)
        if kinds is not None:
            conds.append(pc.c.kind.in_(list(kinds)))
        if search:
            conds.append(sa.or_(contains(pc.c.email, search), contains(pc.c.display_name, search)))
        total = int(self.conn.execute(sa.select(sa.func.count()).select_from(pc).where(*conds)).scalar_one())
        # Changes are stored before overridden, kept and conflict rows, so id order lists the decisions
        # first and lets the (run_id, kind, id) index serve deep pages.
        where = [*conds, *(() if after_id is None else (pc.c.id > after_id,))]
        return self._rows_of_page(org_id, where, page, per_page), total

    def _rows_of_page(self, org_id: int, where: Sequence[Any], page: int, per_page: int) -> list[PlanRow]:
        """One page of a run's rows in id order: the page's ids first, from the (run_id, kind, id) index
        alone, then those rows. Selecting whole rows past an OFFSET made PostgreSQL sort every row before
        it (diffs and targets included: 56 MB on disk, 250 ms for page 980 of a 100,000-row first sync);
        the ids alone sort in memory (80 ms)."""
        pc = t.plan_changes
        ids = (
            sa.select(pc.c.id)
            .where(*where)
            .order_by(pc.c.id)
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
        rows = self.conn.execute(sa.select(pc).where(pc.c.org_id == org_id, pc.c.id.in_(ids)).order_by(pc.c.id))
        return [_row(r) for r in rows]

    def tab_counts(self, org_id: int, run_id: int) -> dict[str, int]:
        """Changes per tab; overridden changes, kept admins and conflicts are listed but not counted."""
        pc = t.plan_changes
        by_kind: dict[str, int] = dict(
            self.conn.execute(
                sa.select(pc.c.kind, sa.func.count())
                .where(pc.c.run_id == run_id, pc.c.org_id == org_id, pc.c.decision.in_([d.value for d in DECIDABLE]))
                .group_by(pc.c.kind)
            ).all()
        )
        return {tab: sum(int(by_kind.get(k, 0)) for k in kinds) for tab, kinds in TABS.items()}

    def tab_change_ids(self, org_id: int, run_id: int, kinds: Iterable[str]) -> list[int]:
        """Ids of the decidable changes of some kinds (what Accept all / Reject all act on)."""
        pc = t.plan_changes
        return [
            int(i)
            for i in self.conn.execute(
                sa.select(pc.c.id).where(
                    pc.c.run_id == run_id,
                    pc.c.org_id == org_id,
                    pc.c.kind.in_(list(kinds)),
                    pc.c.decision.in_([d.value for d in DECIDABLE]),
                )
            ).scalars()
        ]

    def matched(
        self, org_id: int, run_id: int, *, planned_total: int | None, search: str | None, page: int, per_page: int
    ) -> tuple[list[dict[str, Any]], int]:
        """Linked people the run proposes no change for (the Matched tab)."""
        p, pc = t.people, t.plan_changes
        changed = sa.select(pc.c.person_id).where(pc.c.run_id == run_id, pc.c.person_id.is_not(None))
        conds: list[Any] = [
            p.c.entra_id.is_not(None),
            p.c.status != "archived",
            p.c.id.not_in(changed),
        ]
        if search:
            conds.append(sa.or_(contains(p.c.email_lower, search, folded=True), contains(p.c.display_name, search)))
        if planned_total is not None and not search:
            total = planned_total  # the plan counted its matched people: no COUNT over 100,000 rows per page
        else:
            # Most of the organisation is matched: SQLite, without statistics, walked the (org, Entra id)
            # index and fetched every row through it (280 ms at 100,000 people); a plain scan takes 110 ms.
            where = [not_by_org(p) == org_id, *conds]
            total = int(self.conn.execute(sa.select(sa.func.count()).select_from(p).where(*where)).scalar_one())
        conds.insert(0, p.c.org_id == org_id)
        rows = self.conn.execute(
            sa.select(p.c.id, p.c.display_name, p.c.email, p.c.job_title)
            .where(*conds)
            .order_by(p.c.display_name, p.c.id)
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
        return [dict(r._mapping) for r in rows], total

    # -- reads for the pages (added for the review and run pages) ----------------------------------

    def summary(self, org_id: int, run_id: int) -> list[tuple[str, str, bool, int]]:
        """(kind, decision, applied, count) for every row of a run: one GROUP BY over the run's rows
        (the ``(run_id, kind, id)`` index), from which the tabs, the Apply confirmation and the run page
        take their counts."""
        pc = t.plan_changes
        rows = self.conn.execute(
            sa.select(pc.c.kind, pc.c.decision, pc.c.applied, sa.func.count())
            .where(pc.c.run_id == run_id, pc.c.org_id == org_id)
            .group_by(pc.c.kind, pc.c.decision, pc.c.applied)
        ).all()
        return [(str(k), str(d), bool(a), int(n)) for k, d, a, n in rows]

    def page_filtered(
        self,
        org_id: int,
        run_id: int,
        *,
        kinds: Iterable[str] | None,
        decisions: Iterable[str] | None,
        search: str | None,
        page: int,
        per_page: int,
        total: int | None = None,
    ) -> tuple[list[PlanRow], int]:
        """Like :meth:`page`, also filtered by decision (a tab's decisions apart from its notes).
        ``total``, when the caller already counted the rows (from :meth:`summary`), saves the COUNT."""
        pc = t.plan_changes
        conds: list[Any] = _of_run(org_id, run_id)
        if kinds is not None:
            conds.append(pc.c.kind.in_(list(kinds)))
        if decisions is not None:
            conds.append(pc.c.decision.in_(list(decisions)))
        if search:
            conds.append(sa.or_(contains(pc.c.email, search), contains(pc.c.display_name, search)))
        if total is None or search:
            total = int(self.conn.execute(sa.select(sa.func.count()).select_from(pc).where(*conds)).scalar_one())
        return self._rows_of_page(org_id, conds, page, per_page), total

    def joiner_names(self, org_id: int, run_id: int, entra_ids: Iterable[str]) -> dict[str, str]:
        """Entra id -> name of the joiners (creates) of a run among ``entra_ids``: a joiner's manager may
        be another joiner of the same plan."""
        wanted = sorted(set(entra_ids))
        if not wanted:
            return {}
        pc = t.plan_changes
        rows = self.conn.execute(
            sa.select(pc.c.entra_id, pc.c.display_name, pc.c.email).where(
                pc.c.run_id == run_id, pc.c.org_id == org_id, pc.c.kind == "create",
                pc.c.entra_id.in_(sa.bindparam("ids", expanding=True)),
            ),
            {"ids": wanted},
        ).all()  # fmt: skip
        return {str(e): str(n or m or e) for e, n, m in rows}


__all__ = ["TABS", "TAB_NOTES", "PlanRepo", "PlanRow", "conflict_note", "row_dict", "stored_target", "target_json"]
