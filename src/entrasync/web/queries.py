"""Small read queries the pages need and the services do not offer (yet). All filtered by org."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.search import contains
from entrasync.domain.model import Role
from entrasync.errors import NotFoundError, ValidationError
from entrasync.services import connection, sync

REFRESH_TIMES = tuple(f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30))


def departments(conn: Connection, org_id: int) -> list[str]:
    d = t.departments
    return list(conn.execute(sa.select(d.c.name).where(d.c.org_id == org_id).order_by(d.c.name).limit(1000)).scalars())


def managers(conn: Connection, org_id: int, limit: int = 300) -> list[dict[str, Any]]:
    """People who have direct reports (the team filter), by name."""
    p = t.people
    child = sa.alias(p)
    has_reports = sa.exists().where(child.c.manager_id == p.c.id, child.c.status != "archived")
    rows = conn.execute(
        sa.select(p.c.id, p.c.display_name, p.c.email)
        .where(p.c.org_id == org_id, p.c.status != "archived", has_reports)
        .order_by(p.c.display_name, p.c.id)
        .limit(limit)
    )
    return [dict(r._mapping) for r in rows]


def super_admins(conn: Connection, org_id: int) -> list[dict[str, Any]]:
    p = t.people
    rows = conn.execute(
        sa.select(p.c.id, p.c.display_name, p.c.email)
        .join(t.person_roles, t.person_roles.c.person_id == p.c.id)
        .where(p.c.org_id == org_id, p.c.status != "archived", t.person_roles.c.role == Role.SUPER_ADMIN.value)
        .order_by(p.c.display_name, p.c.id)
    )
    return [dict(r._mapping) for r in rows]


def check_recipient(conn: Connection, org_id: int, recipient_id: Any) -> None:
    """A Recipient, when one is given, is a Super admin of this organisation, whether or not
    notifications are on (the settings service checks it only when they are: an unknown id then failed
    as a database error, and another organisation's person was stored)."""
    if recipient_id is None:
        return
    if recipient_id not in {r["id"] for r in super_admins(conn, org_id)}:
        raise ValidationError({"recipient_id": "Choose a Recipient who is a Super admin of this organisation."})


def person_name(conn: Connection, org_id: int, person_id: int) -> str | None:
    p = t.people
    row = conn.execute(sa.select(p.c.display_name, p.c.email).where(p.c.org_id == org_id, p.c.id == person_id)).first()
    return (row[0] or row[1]) if row else None


def org_time_zone(conn: Connection, org_id: int) -> str:
    tz = conn.execute(sa.select(t.organisations.c.time_zone).where(t.organisations.c.id == org_id)).scalar()
    return str(tz or "UTC")


def org_for_tenant(conn: Connection, tenant_id: str) -> int | None:
    row = conn.execute(
        sa.select(t.connections.c.org_id).where(sa.func.lower(t.connections.c.tenant_id) == tenant_id.lower())
    ).first()
    return int(row[0]) if row else None


TENANT_TAKEN = connection.TENANT_TAKEN


def tenant_taken(conn: Connection, tenant_id: str, org_id: int) -> bool:
    """Whether another organisation is already connected to this Entra tenant.

    One tenant belongs to one organisation: otherwise an admin of organisation B could read A's
    directory through the deployment's app registration, and Sign in with Microsoft (which finds the
    organisation by tenant) could put A's people into B.
    """
    row = conn.execute(
        sa.select(t.connections.c.org_id).where(
            sa.func.lower(t.connections.c.tenant_id) == tenant_id.strip().lower(), t.connections.c.org_id != org_id
        )
    ).first()
    return row is not None


def find_person_by_login(conn: Connection, org_id: int, names: list[str]) -> dict[str, Any] | None:
    """The (not archived) person whose e-mail or user principal name is one of ``names``."""
    wanted = sorted({n.strip().lower() for n in names if n and n.strip()})
    if not wanted:
        return None
    p = t.people
    row = conn.execute(
        sa.select(p.c.id, p.c.email, p.c.display_name)
        .where(
            p.c.org_id == org_id,
            p.c.status != "archived",
            sa.or_(p.c.email_lower.in_(wanted), sa.func.lower(p.c.user_principal_name).in_(wanted)),
        )
        .order_by(p.c.id)
        .limit(1)
    ).first()
    return dict(row._mapping) if row else None


def current_run(conn: Connection, org_id: int) -> dict[str, Any] | None:
    """The run the User Sync page shows: the plan waiting for review, else the newest finished run."""
    pending = sync.pending_run(conn, org_id)
    if pending is not None:
        return pending
    r = t.runs
    row = conn.execute(
        sa.select(r).where(r.c.org_id == org_id, r.c.outcome != "running").order_by(r.c.id.desc()).limit(1)
    ).first()
    return dict(row._mapping) if row else None


def running_run(conn: Connection, org_id: int) -> dict[str, Any] | None:
    r = t.runs
    row = conn.execute(
        sa.select(r.c.id, r.c.progress, r.c.started_at)
        .where(r.c.org_id == org_id, r.c.outcome == "running")
        .order_by(r.c.id.desc())
        .limit(1)
    ).first()
    return dict(row._mapping) if row else None


def run_progress(conn: Connection, org_id: int, run_id: int) -> dict[str, Any]:
    r = t.runs
    row = conn.execute(
        sa.select(r.c.id, r.c.outcome, r.c.progress, r.c.error, r.c.counts, r.c.hold_reason).where(
            r.c.org_id == org_id, r.c.id == run_id
        )
    ).first()
    if row is None:
        raise NotFoundError(f"No run {run_id} in this organisation.")
    return dict(row._mapping)


def count_runs(conn: Connection, org_id: int) -> int:
    r = t.runs
    return int(conn.execute(sa.select(sa.func.count()).select_from(r).where(r.c.org_id == org_id)).scalar_one())


def tab_change_ids(conn: Connection, org_id: int, run_id: int, tab: str) -> list[int]:
    """Ids of the decidable changes in one tab (what Accept all / Reject all act on)."""
    pc = t.plan_changes
    kinds = sync.TABS.get(tab)
    if kinds is None:
        raise NotFoundError(f"No tab '{tab}'.")
    return list(
        conn.execute(
            sa.select(pc.c.id).where(
                pc.c.run_id == run_id,
                pc.c.org_id == org_id,
                pc.c.kind.in_(kinds),
                pc.c.decision.in_(("pending", "accepted", "rejected")),
            )
        ).scalars()
    )


def matched(
    conn: Connection, org_id: int, run_id: int, *, search: str | None, page: int, per_page: int
) -> tuple[list[dict[str, Any]], int]:
    """Linked people the run proposes no change for (the Matched tab)."""
    p, pc = t.people, t.plan_changes
    changed = sa.select(pc.c.person_id).where(pc.c.run_id == run_id, pc.c.person_id.is_not(None))
    conds: list[Any] = [
        p.c.org_id == org_id,
        p.c.entra_id.is_not(None),
        p.c.status != "archived",
        p.c.id.not_in(changed),
    ]
    if search:
        conds.append(sa.or_(contains(p.c.email_lower, search, folded=True), contains(p.c.display_name, search)))
    planned = None
    if not search:
        # The plan counted its matched people when it was made: no COUNT over 100,000 rows per page.
        counts = conn.execute(sa.select(t.runs.c.counts).where(t.runs.c.id == run_id)).scalar()
        planned = counts.get("matched") if isinstance(counts, dict) else None
    if isinstance(planned, int):
        total = planned
    else:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(p).where(*conds)).scalar_one())
    rows = conn.execute(
        sa.select(p.c.id, p.c.display_name, p.c.email, p.c.job_title)
        .where(*conds)
        .order_by(p.c.display_name, p.c.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return [dict(r._mapping) for r in rows], total


def local_refresh_time(saved_time: str, saved_zone: str, viewer_zone: str) -> str:
    """The saved daily time as the viewer's wall clock (rounded to the 30-minute grid), for the dialog."""
    if saved_zone == viewer_zone:
        return saved_time
    try:
        hh, mm = (int(x) for x in saved_time.split(":"))
        instant = datetime.combine(date.today(), time(hh, mm), ZoneInfo(saved_zone))
        local = instant.astimezone(ZoneInfo(viewer_zone))
    except (ValueError, KeyError):
        return saved_time
    minutes = (local.hour * 60 + local.minute + 15) // 30 * 30 % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
