"""The audit log (spec §1): reading it. Every service writes its own rows in its own transaction
(``uow.audit.write``), so a change and its audit commit together or not at all."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from entrasync.adapters.db.audit_repo import AuditEntry, render
from entrasync.errors import NotFoundError
from entrasync.services import paging
from entrasync.services.context import AppContext

KIND = "audit"

__all__ = ["AuditEntry", "Filters", "audit_page", "export_csv", "list_entries", "render"]

MAX_LIMIT = 1000
CSV_COLUMNS = ("id", "at", "actor", "actor_person_id", "actor_run_id", "entity", "person_id", "action", "field",
               "old", "new")  # fmt: skip


@dataclass(frozen=True)
class Filters:
    """What `audit list`, `audit export` and the API filter by (§1): person (id or e-mail), run, actor, dates."""

    person: int | str | None = None
    run_id: int | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _person_id(ctx: AppContext, org_id: int, person: int | str | None) -> int | None:
    if person is None or isinstance(person, int):
        return person
    text = person.strip()
    if text.isdigit():
        return int(text)
    with ctx.read() as uow:
        found = uow.people.find_by_email(org_id, text)
    if found is None:
        raise NotFoundError(f"Nobody in this organisation has the e-mail {text}.")
    return int(found["id"])


def list_entries(
    ctx: AppContext,
    org_id: int,
    *,
    person_id: int | None = None,
    limit: int = 200,
    before_id: int | None = None,
    filters: Filters | None = None,
) -> Sequence[dict[str, Any]]:
    """Newest first, ``limit`` at most; page on with ``before_id`` = the last row's id."""
    f = filters or Filters(person=person_id)
    pid = _person_id(ctx, org_id, f.person if f.person is not None else person_id)
    with ctx.read() as uow:
        return uow.audit.page(org_id, person_id=pid, run_id=f.run_id, actor=f.actor, since=f.since, until=f.until,
                              before_id=before_id, limit=max(1, min(limit, MAX_LIMIT)))  # fmt: skip


def export_csv(ctx: AppContext, org_id: int, out: TextIO, filters: Filters | None = None) -> int:
    """Write every matching audit row as CSV (newest first), page by page; returns how many."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    n = 0
    before: int | None = None
    while True:
        rows = list_entries(ctx, org_id, before_id=before, limit=MAX_LIMIT, filters=filters)
        for r in rows:
            at = r["at"]
            writer.writerow([at.isoformat() if c == "at" and at else r.get(c) for c in CSV_COLUMNS])
        n += len(rows)
        if len(rows) < MAX_LIMIT:
            return n
        before = int(rows[-1]["id"])


def audit_page(
    ctx: AppContext, org_id: int, *, person_id: int | None = None, after: str | None = None, limit: int = 200,
    filters: Filters | None = None,
) -> paging.CursorPage:  # fmt: skip
    """Newest first, with an opaque cursor: entries written meanwhile never shift a page (ids only grow)."""
    limit = paging.limit_of(limit)
    f = filters or Filters(person=person_id)
    pid = _person_id(ctx, org_id, f.person if f.person is not None else person_id)
    with ctx.read() as uow:
        rows = uow.audit.page(org_id, person_id=pid, run_id=f.run_id, actor=f.actor, since=f.since, until=f.until,
                              before_id=paging.decode_id(KIND, after), limit=limit + 1)  # fmt: skip
    return paging.page_of(KIND, list(rows), limit)
