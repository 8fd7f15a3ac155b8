"""Commands that read the directory: people, the audit log, notifications."""

from __future__ import annotations

from typing import Annotated

import typer

from entrasync.cli.app import JsonOpt, _ctx, _org, audit_app, notifications_app, people_app
from entrasync.cli.output import emit_json, handle_errors, table

# ---- people, audit, notifications --------------------------------------------------------------


@people_app.command("list")
@handle_errors
def people_list(
    status: Annotated[str, typer.Option(help="active, paused, archived or all.")] = "active",
    search: Annotated[str | None, typer.Option(help="Name or e-mail contains.")] = None,
    department: Annotated[str | None, typer.Option(help="Department name.")] = None,
    page: int = 1,
    per_page: int = 100,
    as_json: JsonOpt = False,
) -> None:
    """People in the directory."""
    from entrasync.services import people

    ctx = _ctx()
    pg = people.list_people(
        ctx, _org(ctx), status=status, search=search, department=department, page=page, per_page=per_page
    )
    if as_json:
        emit_json({"total": pg.total, "page": pg.page, "per_page": pg.per_page, "items": pg.items})
    else:
        table(pg.items, ["id", "display_name", "email", "status", "source", "departments", "manager_name"])
        typer.echo(f"{pg.total} people")


@audit_app.command("list")
@handle_errors
def audit_list(
    person: Annotated[int | None, typer.Option(help="Only this person's entries (person id).")] = None,
    limit: int = 100,
    as_json: JsonOpt = False,
) -> None:
    """The audit log, newest first."""
    from entrasync.services import audit

    ctx = _ctx()
    rows = audit.list_entries(ctx, _org(ctx), person_id=person, limit=limit)
    if as_json:
        emit_json(rows)
    else:
        table(rows, ["id", "at", "actor", "entity", "person_id", "action", "field", "old", "new"])


@notifications_app.command("list")
@handle_errors
def notifications_list(limit: int = 50, as_json: JsonOpt = False) -> None:
    """Notifications sent to the organisation's admins, newest first."""
    from entrasync.services import notifications

    ctx = _ctx()
    rows = notifications.list_all(ctx, _org(ctx), limit=limit)
    if as_json:
        emit_json(rows)
    else:
        table(rows, ["id", "created_at", "recipient_id", "title", "body", "read_at"])
