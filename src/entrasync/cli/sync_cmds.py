"""Commands of the sync: settings, refresh, the plan under review, run history."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from entrasync.cli.app import JsonOpt, _ctx, _org, app, overrides_app, plan_app, runs_app, settings_app
from entrasync.cli.output import EXIT_AWAITING_REVIEW, EXIT_HELD, emit_json, fail, handle_errors, table

# ---- settings ----------------------------------------------------------------------------------


def _settings_out(ctx: Any, org_id: int, s: Any, facts: dict[str, Any] | None, as_json: bool) -> None:
    from entrasync.services import connection, sync_settings

    data = s.public()
    data["recipient"] = sync_settings.recipient_email(ctx, org_id, s)
    data["connected"] = connection.status(ctx, org_id).connected
    warning = None
    if facts:
        warning = facts.get("warning")
        data.update({k: v for k, v in facts.items() if k not in ("changed", "warning")})
        data["changed"] = facts.get("changed", [])
        if warning:
            data["warning"] = warning
    if as_json:
        emit_json(data)
        return
    for k, v in data.items():
        if k != "warning":
            typer.echo(f"{k:18} {v}")
    if warning:
        typer.echo(f"warning: {warning}")


@settings_app.command("show")
@handle_errors
def settings_show(as_json: JsonOpt = False) -> None:
    """Show the sync settings."""
    from entrasync.services import sync_settings

    ctx = _ctx()
    org_id = _org(ctx)
    _settings_out(ctx, org_id, sync_settings.load(ctx, org_id), None, as_json)


@settings_app.command("set")
@handle_errors
def settings_set(
    strategy: Annotated[str | None, typer.Option(help="manual (Manual refresh) or daily (Daily refresh).")] = None,
    refresh_time: Annotated[str | None, typer.Option(help="HH:MM on the half hour, 00:00-23:30.")] = None,
    time_zone: Annotated[str | None, typer.Option(help="IANA zone of the refresh time, e.g. Europe/London.")] = None,
    mode: Annotated[str | None, typer.Option(help="manual (Manual comparison) or auto (Auto-sync).")] = None,
    notify: Annotated[bool | None, typer.Option("--notify/--no-notify", help="Send notification on refresh.")] = None,
    recipient: Annotated[str | None, typer.Option(help="E-mail of the Super admin to notify.")] = None,
    graph_filter: Annotated[str | None, typer.Option(help="OData $filter on users; '' turns it off.")] = None,
    email_include: Annotated[str | None, typer.Option(help="Include if e-mail contains (comma-separated).")] = None,
    email_exclude: Annotated[str | None, typer.Option(help="Exclude if e-mail contains (comma-separated).")] = None,
    email_filter: Annotated[bool | None, typer.Option("--email-filter/--no-email-filter")] = None,
    groups: Annotated[str | None, typer.Option(help="Entra group ids, comma-separated; '' turns it off.")] = None,
    guard_percent: Annotated[float | None, typer.Option(help="Safety guard share, percent.")] = None,
    link_by: Annotated[str | None, typer.Option(help="First link by: email (default) or employee_id.")] = None,
    manual_people: Annotated[
        str | None, typer.Option(help="People added by hand who match no Entra user: archive (default) or keep.")
    ] = None,
    preview: Annotated[
        bool,
        typer.Option("--preview", help="Validate as a Save, show the plan these settings would make; save nothing."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Change sync settings: validated (the Graph filter is tried against Graph), saved atomically."""
    from entrasync.errors import ValidationError
    from entrasync.services import people, sync_settings
    from entrasync.services.context import Actor

    ctx = _ctx()
    org_id = _org(ctx)
    changes: dict[str, Any] = {}
    for key, value in (
        ("strategy", strategy),
        ("refresh_time", refresh_time),
        ("time_zone", time_zone),
        ("mode", mode),
        ("notify", notify),
        ("guard_percent", guard_percent),
        ("link_by", link_by),
        ("manual_people", manual_people),
    ):
        if value is not None:
            changes[key] = value
    if recipient is not None:
        person = people.find_by_email(ctx, org_id, recipient)
        if person is None:
            raise ValidationError({"recipient_id": f"No person with e-mail {recipient}."})
        changes["recipient_id"] = person["id"]
    if graph_filter is not None:
        changes["graph_filter_on"] = bool(graph_filter.strip())
        changes["graph_filter"] = graph_filter
    if email_include is not None:
        changes["email_include"] = email_include
    if email_exclude is not None:
        changes["email_exclude"] = email_exclude
    if email_filter is not None:
        changes["email_filter_on"] = email_filter
    elif email_include is not None or email_exclude is not None:
        changes["email_filter_on"] = True
    if groups is not None:
        changes["group_filter_on"] = bool(groups.strip())
        changes["group_ids"] = groups
    if not changes and not preview:
        fail("nothing to change; see `entrasync settings set --help`.")
    if preview:
        from entrasync.services import preview as previews

        out = previews.preview_settings(ctx, org_id, changes)
        print_preview(out.public(), as_json, "Preview (nothing saved)")
        return
    s, facts = sync_settings.save(ctx, org_id, Actor.cli(), changes)
    _settings_out(ctx, org_id, s, facts, as_json)


@settings_app.command("mapping")
@handle_errors
def settings_mapping(as_json: JsonOpt = False) -> None:
    """Show the attribute mapping: each directory field, its Entra source, written always or on create."""
    from entrasync.services import field_mapping, sync_settings

    ctx = _ctx()
    org_id = _org(ctx)
    s = sync_settings.load(ctx, org_id)
    rows = field_mapping.mapping_rows(s)
    if as_json:
        emit_json({"mapping": rows, "link_by": s.link_by, "manual_people": s.manual_people,
                   "free_custom_fields": len(field_mapping.free_custom_slots(s))})  # fmt: skip
        return
    table(rows, ["field", "label", "source", "write", "default"])
    typer.echo(f"first link by: {s.link_by}; people added by hand: {s.manual_people}")


@settings_app.command("map")
@handle_errors
def settings_map(
    field: Annotated[str, typer.Argument(help="Directory field (e.g. employee_id), custom_1..custom_20, or custom.")],
    source: Annotated[
        str | None,
        typer.Option(
            help="Entra property: e.g. userPrincipalName, onPremisesExtensionAttributes.extensionAttribute1, "
            "extension_<appId>_<name>."
        ),
    ] = None,
    create_only: Annotated[
        bool | None, typer.Option("--create-only/--always", help="Write only when the person is created, or always.")
    ] = None,
    default: Annotated[str | None, typer.Option(help="Value when Entra's is empty ('' removes it).")] = None,
    label: Annotated[str | None, typer.Option(help="What the person's page calls it (custom fields).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Map a directory field: checked against Graph ($select) before it is saved."""
    from entrasync.services import field_mapping
    from entrasync.services.context import Actor

    ctx = _ctx()
    org_id = _org(ctx)
    if source is None and create_only is None and default is None and label is None:
        fail("nothing to change; give --source, --create-only/--always, --default or --label.")
    s, facts = field_mapping.map_field(ctx, org_id, Actor.cli(), field, source=source, create_only=create_only,
                                       default=default, label=label)  # fmt: skip
    _mapping_out(s, facts, as_json)


@settings_app.command("unmap")
@handle_errors
def settings_unmap(
    field: Annotated[str, typer.Argument(help="Directory field back to its default mapping; a custom field stops.")],
    as_json: JsonOpt = False,
) -> None:
    """Give a field its default mapping back (a custom field is no longer read)."""
    from entrasync.services import field_mapping
    from entrasync.services.context import Actor

    ctx = _ctx()
    org_id = _org(ctx)
    s, facts = field_mapping.unmap_field(ctx, org_id, Actor.cli(), field)
    _mapping_out(s, facts, as_json)


def _mapping_out(s: Any, facts: dict[str, Any], as_json: bool) -> None:
    from entrasync.services import field_mapping

    rows = field_mapping.mapping_rows(s)
    if as_json:
        emit_json({"mapping": rows, "stored": s.mapping, "changed": facts.get("changed", [])})
        return
    changed = [r for r in rows if r["changed"]]
    saved = "saved; the next refresh reads Entra in full with the new mapping"
    typer.echo(saved if facts.get("changed") else "no change")
    for r in changed:
        typer.echo(f"{r['field']:20} {r['source'] or '':50} {r['write']:7} {r['default'] or ''}  {r['label']}")


# ---- refresh, plan, runs -----------------------------------------------------------------------


@app.command()
@handle_errors
def refresh(
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Read Entra and plan, print the plan's counts and first changes; store nothing."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Read Entra now and plan; apply it too in Auto-sync mode (unless the safety guard holds it)."""
    from entrasync.cli.progress import ProgressPrinter
    from entrasync.runners import tuning
    from entrasync.services import sync
    from entrasync.services.context import Actor

    ctx = _ctx()
    org_id = _org(ctx)
    if dry_run:
        from entrasync.services import preview

        with tuning.refresh_process():
            out = preview.dry_run(ctx, org_id)
        print_preview(out.public(), as_json, "Dry run (nothing stored)")
        return
    interactive = not as_json and sys.stderr.isatty()
    progress = ProgressPrinter(enabled=interactive, expected=_last_people_read(ctx, org_id) if interactive else None)
    with tuning.refresh_process():  # this process only refreshes: pause the GC for its 100,000s of objects
        result = sync.refresh(ctx, org_id, trigger="cli", actor=Actor.cli(), on_progress=progress)
    progress.close()
    if as_json:
        emit_json(result.public())
    else:
        c = result.counts
        typer.echo(
            f"Run {result.run_id}: {result.outcome}. create {c.get('create', 0)}, update {c.get('update', 0)}, "
            f"move {c.get('move', 0)}, archive {c.get('archive', 0)}, restore {c.get('restore', 0)}, "
            f"matched {c.get('matched', 0)}; {result.graph_requests} Graph requests ({result.read_mode or '-'} read)."
        )
        if result.hold_reason:
            typer.echo(result.hold_reason)
    if result.outcome == "failed":
        fail(result.error or "the refresh failed")
    # cron tells outcomes apart without parsing (README "Command line"): 3 waits for review, 4 held.
    code = {"awaiting_review": EXIT_AWAITING_REVIEW, "held": EXIT_HELD}.get(result.outcome, 0)
    if code:
        raise typer.Exit(code)


def print_preview(data: dict[str, Any], as_json: bool, title: str) -> None:
    """A dry run's or a Preview's plan: counts, then the first changes with their field diffs."""
    if as_json:
        emit_json(data)
        return
    c = data["counts"]
    typer.echo(
        f"{title}: create {c.get('create', 0)}, update {c.get('update', 0)}, move {c.get('move', 0)}, "
        f"archive {c.get('archive', 0)}, restore {c.get('restore', 0)}, matched {c.get('matched', 0)}, "
        f"overridden {c.get('overridden', 0)}, conflicts {c.get('conflicts', 0)}; "
        f"{data['graph_requests']} Graph requests."
    )
    if data.get("held"):
        typer.echo(f"The safety guard would hold this plan: {data.get('hold_reason')}")
    shown = data["changes"]
    if shown:
        typer.echo(f"First {len(shown)} of {data['total_changes']} changes:")
    for ch in shown:
        who = ch["email"] or ch["target_email"] or ch["entra_id"]
        typer.echo(f"  {ch['kind']:8} {who} ({ch['reason']})")
        for d in ch["diffs"]:
            mark = "  [hand edit overwritten]" if d["manual_edit"] else ""
            typer.echo(f"      {d['field']}: {d['old']!r} -> {d['new']!r}{mark}")


def _last_people_read(ctx: Any, org_id: int) -> int | None:
    """How many people the last finished refresh read: the progress bar's 100%."""
    from entrasync.services import runs

    for run in runs.list_runs(ctx, org_id, limit=5):
        read = (run.get("progress") or {}).get("people_read")
        if isinstance(read, int) and run["outcome"] not in ("running", "failed"):
            return read
    return None


@plan_app.command("show")
@handle_errors
def plan_show(
    tab: Annotated[str | None, typer.Option(help="entra_only, directory_only or differences.")] = None,
    search: Annotated[str | None, typer.Option(help="Filter by name or e-mail.")] = None,
    page: int = 1,
    per_page: int = 200,
    as_json: JsonOpt = False,
) -> None:
    """Show the plan waiting for review (held or Manual comparison)."""
    from entrasync.services import review

    ctx = _ctx()
    org_id = _org(ctx)
    run = review.pending_run(ctx, org_id)
    if run is None:
        if as_json:
            emit_json({"run_id": None, "changes": [], "message": "No plan is waiting for review."})
        else:
            typer.echo("No plan is waiting for review.")
        return
    changes, total = review.plan_changes(ctx, org_id, run["id"], tab=tab, search=search, page=page, per_page=per_page)
    tabs = review.tab_counts(ctx, org_id, run["id"])
    data = {
        "run_id": run["id"],
        "outcome": run["outcome"],
        "hold_reason": run["hold_reason"],
        "counts": run["counts"],
        "tabs": tabs,
        "total": total,
        "page": page,
        "changes": [
            {
                k: c[k]
                for k in (
                    "id",
                    "kind",
                    "reason",
                    "person_id",
                    "entra_id",
                    "display_name",
                    "email",
                    "decision",
                    "fingerprint",
                )
            }
            | {"diffs": c["diffs"], "overridden_kind": c["overridden_kind"]}
            for c in changes
        ],
    }
    if as_json:
        emit_json(data)
        return
    typer.echo(f"Plan of run {run['id']} ({run['outcome']}). {run['hold_reason'] or ''}".rstrip())
    for c in data["changes"]:
        typer.echo(
            f"  #{c['id']} {c['kind']:8} {c['reason']:15} {c['email'] or c['display_name'] or ''} [{c['decision']}]"
        )
        for d in c["diffs"]:
            mark = " (manual edit overwritten)" if d["manual_edit"] else ""
            typer.echo(f"      {d['field']}: {d['old']!r} -> {d['new']!r}{mark}")
    typer.echo(f"{total} shown of this filter; tabs: {tabs}")


@plan_app.command("apply")
@handle_errors
def plan_apply(
    reject: Annotated[list[int] | None, typer.Option("--reject", help="Change id to reject (repeat).")] = None,
    run: Annotated[int | None, typer.Option(help="Run whose plan to apply (default: the waiting one).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Apply the waiting plan; rejected changes become overrides and are not proposed again."""
    from entrasync.services import review
    from entrasync.services.context import Actor

    ctx = _ctx()
    result = review.apply_plan(ctx, _org(ctx), Actor.cli(), run_id=run, reject=reject or ())
    if as_json:
        emit_json(result.public())
    elif result.already_applied:
        typer.echo(f"The plan of run {result.run_id} was already applied; nothing to do.")
    else:
        done = ", ".join(f"{k} {v}" for k, v in result.applied.items())
        typer.echo(f"Applied the plan of run {result.run_id}: {done}; {result.rejected} rejected.")


@runs_app.command("list")
@handle_errors
def runs_list(limit: int = 20, as_json: JsonOpt = False) -> None:
    """Past refreshes, newest first."""
    from entrasync.services import runs

    ctx = _ctx()
    rows = runs.list_runs(ctx, _org(ctx), limit=limit)
    if as_json:
        emit_json(rows)
    else:
        table(rows, ["id", "trigger", "started_at", "outcome", "counts", "graph_requests", "error"])


@runs_app.command("show")
@handle_errors
def runs_show(
    run_id: int,
    page: Annotated[int, typer.Option(help="Page of its changes.")] = 1,
    per_page: Annotated[int, typer.Option(help="Changes per page, at most 1000.")] = 200,
    as_json: JsonOpt = False,
) -> None:
    """One refresh and one page of its changes, with kinds, reasons and what became of each."""
    from entrasync.services import runs

    ctx = _ctx()
    run = runs.get_run(ctx, _org(ctx), run_id, page=page, per_page=per_page)
    if as_json:
        emit_json(run)
        return
    typer.echo(f"Run {run['id']} ({run['trigger']}, {run['triggered_by']}): {run['outcome']}; proposed {run['counts']}")
    if run.get("applied_by"):
        typer.echo(f"Applied by {run['applied_by']} at {run['applied_at']:%Y-%m-%d %H:%M}: {run['applied_counts']}")
    if run["error"]:
        typer.echo(f"Error: {run['error']}")
    table(run["changes"], ["id", "kind", "reason", "email", "decision", "applied"])
    shown = (run["page"] - 1) * run["per_page"] + len(run["changes"])
    typer.echo(
        f"{shown} of {run['changes_total']} changes" + (f"; next: --page {run['page'] + 1}" if run["more"] else "")
    )


@overrides_app.command("list")
@handle_errors
def overrides_list(
    person: Annotated[int | None, typer.Option(help="Only this person's overrides (person id).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Changes rejected in review and not proposed again: person, field or kind, Entra's value, who, when."""
    from entrasync.services import review

    ctx = _ctx()
    rows = review.list_overrides(ctx, _org(ctx), person_id=person)
    if as_json:
        emit_json(rows)
    else:
        table(rows, ["id", "email", "part", "label", "created_by", "created_at"])


@overrides_app.command("revoke")
@handle_errors
def overrides_revoke(override_id: int, as_json: JsonOpt = False) -> None:
    """Revoke one override: the next refresh proposes that change again."""
    from entrasync.services import review
    from entrasync.services.context import Actor

    ctx = _ctx()
    found = review.revoke_override(ctx, _org(ctx), Actor.cli(), override_id)
    if as_json:
        emit_json(found)
    else:
        typer.echo(f"Override {override_id} revoked: the next refresh proposes it again.")
