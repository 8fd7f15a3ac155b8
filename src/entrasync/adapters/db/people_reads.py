"""People, as the pages read them beyond lists: names for a page of e-mails, ids or Entra ids, the
count of people synced, linked people by name, the top of the organisation and the values the People
filters offer. A mixin of
:class:`~entrasync.adapters.db.people_repo.PeopleRepo` (``uow.people``), kept apart for its size."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.search import contains
from entrasync.domain import fields


def person_filters(
    org_id: int,
    *,
    status: str | None,
    search: str | None,
    department: str | None,
    manager_id: int | None,
    facets: Mapping[str, str] | None = None,
) -> list[Any]:
    """The People list's filters, one set for the pages (offset) and the API (cursor). ``facets``: field
    of :data:`fields.FACET_FIELDS` -> its value, compared in any case (Entra's values are typed by hand:
    "Contoso" and "contoso" are one company)."""
    p = t.people
    conds: list[Any] = [p.c.org_id == org_id]
    if status and status != "all":
        conds.append(p.c.status == status)
    if search:
        conds.append(sa.or_(contains(p.c.email_lower, search, folded=True), contains(p.c.display_name, search)))
    if department:
        conds.append(
            p.c.id.in_(
                sa.select(t.person_departments.c.person_id)
                .join(t.departments, t.departments.c.id == t.person_departments.c.department_id)
                .where(t.departments.c.org_id == org_id, t.departments.c.name == department)
            )
        )
    if manager_id is not None:
        conds.append(p.c.manager_id == manager_id)
    for name, value in (facets or {}).items():
        conds.append(sa.func.lower(p.c[fields.BY_NAME[name].people_column or name]) == value.strip().lower())
    return conds


def not_by_org(p: Any) -> Any:
    """``org_id`` as an expression no index serves, for queries a narrower index answers better.

    Without statistics (nobody runs ANALYZE) SQLite takes any index that starts with ``org_id`` for an
    ``org_id = ?`` term, and then reads every person of the organisation: at 100,000 people the top of
    the organisation cost 100-500 ms that way and 5 ms through the manager index. PostgreSQL has
    statistics and picks the narrow index anyway; the ``+ 0`` changes nothing there."""
    return p.c.org_id + 0


@dataclass(frozen=True)
class Subset:
    """A few people, by id, Entra object id, e-mail (any case) or employee id (as typed, trimmed, in
    lower or upper case: the planner compares them casefolded; these variants keep to the index)."""

    ids: frozenset[int] = frozenset()
    entra_ids: frozenset[str] = frozenset()
    emails: frozenset[str] = frozenset()
    employee_ids: frozenset[str] = frozenset()

    def key_lists(self) -> list[tuple[sa.ColumnElement[Any], list[str]]]:
        """(column, values) for each kind of key but the id, as the indexed columns hold them."""
        p = t.people
        variants = {v for e in self.employee_ids for v in (e, e.strip(), e.strip().lower(), e.strip().upper()) if v}
        return [
            (p.c.entra_id, sorted(self.entra_ids)),
            (p.c.email_lower, sorted({e.strip().lower() for e in self.emails})),
            (p.c.employee_id, sorted(variants)),
        ]


class PeopleReads:
    conn: Connection

    def names_by_email(self, org_id: int, emails: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Lower-cased e-mail -> {id, name} for a page of e-mails (one query, the unique e-mail index)."""
        wanted = sorted({e.strip().lower() for e in emails if e and e.strip()})
        if not wanted:
            return {}
        p = t.people
        rows = self.conn.execute(
            sa.select(p.c.email_lower, p.c.id, p.c.display_name, p.c.email).where(
                p.c.org_id == org_id, p.c.email_lower.in_(sa.bindparam("e", expanding=True))
            ),
            {"e": wanted},
        ).all()
        return {str(el): {"id": int(i), "name": n or m} for el, i, n, m in rows}

    def names_by_entra_id(self, org_id: int, entra_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Entra object id -> {id, name} (one query, the (org, entra id) unique index)."""
        wanted = sorted({e for e in entra_ids if e})
        if not wanted:
            return {}
        p = t.people
        rows = self.conn.execute(
            sa.select(p.c.entra_id, p.c.id, p.c.display_name, p.c.email).where(
                p.c.org_id == org_id, p.c.entra_id.in_(sa.bindparam("e", expanding=True))
            ),
            {"e": wanted},
        ).all()
        return {str(e): {"id": int(i), "name": n or m} for e, i, n, m in rows}

    def names_by_id(self, org_id: int, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Person id -> {id, name, email} for a page of ids (one query)."""
        wanted = sorted({int(i) for i in ids if i is not None})
        if not wanted:
            return {}
        p = t.people
        rows = self.conn.execute(
            sa.select(p.c.id, p.c.display_name, p.c.email).where(
                p.c.org_id == org_id, p.c.id.in_(sa.bindparam("i", expanding=True))
            ),
            {"i": wanted},
        ).all()
        return {int(i): {"id": int(i), "name": n or m, "email": m} for i, n, m in rows}

    def count_linked(self, org_id: int) -> int:
        """People linked to an Entra user and not archived ("people synced").

        Counted over indexes only, at 100,000 people a few milliseconds: everyone not archived (the
        (org, status) index) minus the unlinked ones among them (the (org, entra id) index at NULL, a
        handful of people added by hand). A direct count would read every row for its status."""
        p = t.people
        kept = self.conn.execute(
            sa.select(sa.func.count()).select_from(p).where(p.c.org_id == org_id, p.c.status != "archived")
        ).scalar_one()
        unlinked = self.conn.execute(
            sa.select(sa.func.count())
            .select_from(p)
            .where(p.c.org_id == org_id, p.c.entra_id.is_(None), p.c.status != "archived")
        ).scalar_one()
        return int(kept) - int(unlinked)

    def linked_page(
        self, org_id: int, *, search: str | None, page: int, per_page: int, total: int | None
    ) -> tuple[list[dict[str, Any]], int]:
        """Linked people who are not archived, by name (the Matched tab when no plan waits)."""
        p = t.people
        conds: list[Any] = [p.c.org_id == org_id, p.c.entra_id.is_not(None), p.c.status != "archived"]
        if search:
            conds.append(sa.or_(contains(p.c.email_lower, search, folded=True), contains(p.c.display_name, search)))
        if total is None or search:
            total = int(self.conn.execute(sa.select(sa.func.count()).select_from(p).where(*conds)).scalar_one())
        rows = self.conn.execute(
            sa.select(p.c.id, p.c.display_name, p.c.email, p.c.job_title)
            .where(*conds)
            .order_by(p.c.display_name, p.c.id)
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
        return [dict(r._mapping) for r in rows], total

    def top_of_org(self, org_id: int, *, heads: int = 500, others: int = 50, scan: int = 20_000) -> dict[str, Any]:
        """People nobody manages (not archived): heads of teams with their report counts (most reports
        first), and the others — synced people without a manager, people added by hand — counted, and the
        first ``others`` of each by name.

        One query through the manager index (``manager_id IS NULL``, see :func:`not_by_org`), sorted
        here: the top of an organisation is a few hundred people, or a few thousand when managers are
        out of scope. Beyond ``scan`` rows the totals count at most that many."""
        p = t.people
        child = sa.alias(p)
        counts = (
            sa.select(sa.func.count())
            .select_from(child)
            .where(child.c.manager_id == p.c.id, child.c.status != "archived")
            .scalar_subquery()
        )
        found = [
            dict(r._mapping)
            for r in self.conn.execute(
                sa.select(p.c.id, p.c.display_name, p.c.email, p.c.job_title, p.c.source, counts.label("reports"))
                .where(not_by_org(p) == org_id, p.c.status != "archived", p.c.manager_id.is_(None))
                .limit(scan)
            )
        ]
        by_name = sorted((r for r in found if not r["reports"]), key=lambda r: (r["display_name"] or "", r["id"]))
        hand = [r for r in by_name if r["source"] == "manual"]
        alone = [r for r in by_name if r["source"] != "manual"]
        leads = sorted((r for r in found if r["reports"]), key=lambda r: (-r["reports"], r["display_name"] or ""))
        return {
            "heads": leads[:heads],
            "without_manager": alone[:others],
            "without_manager_total": len(alone),
            "by_hand": hand[:others],
            "by_hand_total": len(hand),
        }

    def facet_values(self, org_id: int, limit: int = 200) -> dict[str, list[str]]:
        """Each People filter field -> the values people who are not archived hold, by name, at most
        ``limit`` (one query per field; a field nobody fills is left out)."""
        p = t.people
        out: dict[str, list[str]] = {}
        for name in fields.FACET_FIELDS:
            col = p.c[fields.BY_NAME[name].people_column or name]
            values = list(
                self.conn.execute(
                    sa.select(col)
                    .where(p.c.org_id == org_id, p.c.status != "archived", col.is_not(None), col != "")
                    .group_by(col)
                    .order_by(col)
                    .limit(limit)
                ).scalars()
            )
            if values:
                out[name] = values
        return out
