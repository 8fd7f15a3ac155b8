"""Commands that read the directory: people, the audit log, notifications."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from entrasync.cli.app import JsonOpt, _ctx, _org, audit_app, notifications_app, people_app
from entrasync.cli.output import emit_json, fail, handle_errors, table

# ---- people, audit, notifications --------------------------------------------------------------


@people_app.command("list")
@handle_errors
def people_list(
    status: Annotated[str, typer.Option(help="active, paused, archived or all.")] = "active",
    search: Annotated[str | None, typer.Option(help="Name or e-mail contains.")] = None,
    department: Annotated[str | None, typer.Option(help="Department name.")] = None,
    employee_type: Annotated[str | None, typer.Option(help="Employee type (any case), e.g. Contractor.")] = None,
    company: Annotated[str | None, typer.Option(help="Company name (any case).")] = None,
    city: Annotated[str | None, typer.Option(help="City (any case).")] = None,
    country: Annotated[str | None, typer.Option(help="Country (any case).")] = None,
    page: Annotated[int, typer.Option(help="Page, from 1.")] = 1,
    per_page: Annotated[int, typer.Option(help="People per page, 1 to 500.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """People in the directory, one page at a time (the output says when there are more)."""
    from entrasync.services import people, people_facets

    if page < 1:
        fail("--page starts at 1.")
    if not 1 <= per_page <= people.MAX_PER_PAGE:
        fail(f"--per-page is 1 to {people.MAX_PER_PAGE}.")
    ctx = _ctx()
    facets = people_facets.facets_of(
        {"employee_type": employee_type, "company_name": company, "city": city, "country": country}
    )
    pg = people.list_people(
        ctx, _org(ctx), status=status, search=search, department=department, page=page, per_page=per_page,
        facets=facets,
    )  # fmt: skip
    more = pg.page * pg.per_page < pg.total
    if as_json:
        emit_json({"total": pg.total, "page": pg.page, "per_page": pg.per_page, "more": more, "items": pg.items})
        return
    table(pg.items, ["id", "display_name", "email", "status", "source", "departments", "manager_name"])
    first = (pg.page - 1) * pg.per_page + 1 if pg.items else 0
    last = (pg.page - 1) * pg.per_page + len(pg.items)
    typer.echo(f"{first}-{last} of {pg.total} people" + (f"; next page: --page {pg.page + 1}" if more else ""))


def _audit_filters(person: str | None, run: int | None, actor: str | None, since: str | None, until: str | None) -> Any:
    from entrasync.services import audit

    return audit.Filters(person=person, run_id=run, actor=actor, since=_when(since, "--since"),
                         until=_when(until, "--until"))  # fmt: skip


def _when(text: str | None, option: str) -> Any:
    from datetime import UTC, datetime

    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        fail(f"{option} takes a date or time like 2026-11-30 or 2026-11-30T09:00 (UTC unless it says otherwise).")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


PersonOpt = Annotated[str | None, typer.Option("--person", help="Only this person's entries: id or e-mail.")]
RunOpt = Annotated[int | None, typer.Option("--run", help="Only what this run wrote (its sync, or its apply).")]
ActorOpt = Annotated[str | None, typer.Option("--actor", help="Only entries whose actor contains this text.")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="From this date or time (UTC), inclusive.")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Before this date or time (UTC).")]


@audit_app.command("list")
@handle_errors
def audit_list(
    person: PersonOpt = None,
    run: RunOpt = None,
    actor: ActorOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: Annotated[int, typer.Option(help="Entries per page, at most 1000.")] = 100,
    before_id: Annotated[
        int | None, typer.Option("--before-id", help="The next page: entries older than this id.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The audit log, newest first, one page at a time (the output says how to get the next)."""
    from entrasync.services import audit

    ctx = _ctx()
    rows = list(audit.list_entries(ctx, _org(ctx), limit=limit, before_id=before_id,
                                   filters=_audit_filters(person, run, actor, since, until)))  # fmt: skip
    nxt = int(rows[-1]["id"]) if len(rows) == min(max(limit, 1), audit.MAX_LIMIT) and rows else None
    if as_json:
        emit_json({"items": rows, "next_before_id": nxt})
        return
    table(rows, ["id", "at", "actor", "entity", "person_id", "action", "field", "old", "new"])
    if nxt is not None:
        typer.echo(f"More entries: add --before-id {nxt}")


@audit_app.command("export")
@handle_errors
def audit_export(
    person: PersonOpt = None,
    run: RunOpt = None,
    actor: ActorOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="CSV file to write (default: stdout).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every matching audit entry as CSV (newest first)."""
    from entrasync.services import audit

    ctx = _ctx()
    filters = _audit_filters(person, run, actor, since, until)
    if output is None:
        n = audit.export_csv(ctx, _org(ctx), sys.stdout, filters)
        return
    try:
        with output.open("w", newline="", encoding="utf-8") as fh:
            n = audit.export_csv(ctx, _org(ctx), fh, filters)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}.")
    if as_json:
        emit_json({"rows": n, "file": str(output)})
    else:
        typer.echo(f"{n} audit entries written to {output}.")


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


@people_app.command("explain")
@handle_errors
def people_explain(
    who: Annotated[str, typer.Argument(help="An e-mail, a user principal name or an Entra object id.")],
    as_json: JsonOpt = False,
) -> None:
    """Why one person or Entra user is (not) synced, and what the next refresh would do to them. Reads
    that Entra user now (a few Graph requests); stores nothing."""
    from entrasync.services import explain

    ctx = _ctx()
    data = explain.explain(ctx, _org(ctx), who).public()
    if as_json:
        emit_json(data)
        return
    for line in explain_lines(data):
        typer.echo(line)


def explain_lines(data: dict[str, Any]) -> list[str]:
    """The explanation as text: the user, each filter's verdict, the match, the next refresh's diffs."""
    u, p, f = data["entra_user"], data["person"], data["filters"]
    out = [
        f"Entra user: {u['values']['email']} ({u['id']})" if u else "Entra user: none found",
        f"Person:     #{p['id']} {p['values']['email']} ({p['status']}, {p['source']})" if p else "Person:     none",
    ]
    if u:
        gf, ef, grp = f["graph_filter"], f["email_filter"], f["group_filter"]
        out.append(f"  account enabled: {'yes' if f['account_enabled'] else 'no (disabled: out of scope)'}")
        out.append(
            f"  Graph filter:    {'off' if not gf['on'] else ('passes' if gf['passed'] else 'excluded by')} "
            f"{gf['definition'] or ''}".rstrip()
        )
        out.append(f"  e-mail filter:   {ef['reason']}")
        if not grp["on"]:
            out.append("  group filter:    off")
        elif grp["passed"]:
            path = " > ".join(g["name"] or g["id"] for g in grp["path"])
            out.append(
                f"  group filter:    member of {grp['groups'][0]['name'] or grp['groups'][0]['id']} (via {path})"
            )
        else:
            out.append("  group filter:    not a member of any listed group")
        out.append(f"  in scope:        {'yes' if data['in_scope'] else 'no'}")
    out.append(f"Match: {data['match']['summary']}")
    nxt = data["next_refresh"]
    out.append(f"Next refresh: {nxt['summary']}")
    for d in nxt["diffs"]:
        marks = (" [rejected in review: kept back]" if d["overridden"] else "") + (
            " [edited by hand: overwritten]" if d["manual_edit"] and not d["overridden"] else ""
        )
        out.append(f"  {d['field']}: {d['old']!r} -> {d['new']!r}{marks}")
    return out
