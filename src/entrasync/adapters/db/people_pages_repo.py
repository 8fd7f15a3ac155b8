"""The API's reads of people (spec §11 "Reading the directory"): keyset pages by id with exact
look-ups and ``updated_since``, and the organisation tree one level at a time. Ids never change, so a
page after id N is the same page whatever was added or edited meanwhile (services.paging)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.people_reads import person_filters
from entrasync.adapters.db.people_repo import PeopleRepo, _person


class PeoplePagesRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._people = PeopleRepo(conn)

    def keyset(
        self,
        org_id: int,
        *,
        after_id: int,
        limit: int,
        status: str | None = None,
        not_archived: bool = False,
        search: str | None = None,
        department: str | None = None,
        manager_id: int | None = None,
        updated_since: datetime | None = None,
        entra_id: str | None = None,
        email: str | None = None,
        employee_id: str | None = None,
        facets: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """People by id after ``after_id`` (the API's cursor paging: stable under concurrent inserts and
        edits, since ids never change), with exact look-ups and ``updated_since``."""
        p = t.people
        conds = person_filters(
            org_id, status=status, search=search, department=department, manager_id=manager_id, facets=facets
        )
        conds.append(p.c.id > after_id)
        if not_archived:
            conds.append(p.c.status != "archived")
        if updated_since is not None:
            conds.append(p.c.updated_at >= updated_since)
        if entra_id is not None:
            conds.append(p.c.entra_id == entra_id)
        if email is not None:
            conds.append(p.c.email_lower == email.strip().lower())
        if employee_id is not None:
            conds.append(p.c.employee_id == employee_id)
        rows = self.conn.execute(sa.select(p).where(*conds).order_by(p.c.id).limit(limit)).all()
        items = [_person(r) for r in rows]
        self._people._attach(items)
        return items

    def tree_keyset(self, org_id: int, root_id: int | None, *, after_id: int, limit: int) -> list[dict[str, Any]]:
        """Direct reports of ``root_id`` (or the top of the organisation) by id, with their report counts."""
        p = t.people
        child = sa.alias(p)
        counts = (
            sa.select(sa.func.count())
            .select_from(child)
            .where(child.c.manager_id == p.c.id, child.c.status != "archived")
            .scalar_subquery()
        )
        cond = p.c.manager_id.is_(None) if root_id is None else p.c.manager_id == root_id
        rows = self.conn.execute(
            sa.select(p.c.id, p.c.display_name, p.c.email, p.c.job_title, p.c.manager_id, counts.label("reports"))
            .where(p.c.org_id == org_id, p.c.status != "archived", cond, p.c.id > after_id)
            .order_by(p.c.id)
            .limit(limit)
        )
        return [dict(r._mapping) for r in rows]
