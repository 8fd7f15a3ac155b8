"""The ``entrasync`` command line (§7): every command has ``--json`` and a one-line error on failure."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from entrasync.cli.output import emit_json, fail, handle_errors, table

app = typer.Typer(
    name="entrasync",
    help="A people directory kept in sync with Microsoft Entra ID.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
settings_app = typer.Typer(help="Show or change the sync settings.", no_args_is_help=True)
plan_app = typer.Typer(help="Show or apply the plan waiting for review.", no_args_is_help=True)
people_app = typer.Typer(help="The people directory.", no_args_is_help=True)
runs_app = typer.Typer(help="Refresh history.", no_args_is_help=True)
admin_app = typer.Typer(help="Local admin accounts.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
notifications_app = typer.Typer(help="In-product notifications.", no_args_is_help=True)
for sub, name in (
    (settings_app, "settings"),
    (plan_app, "plan"),
    (people_app, "people"),
    (runs_app, "runs"),
    (admin_app, "admin"),
    (audit_app, "audit"),
    (notifications_app, "notifications"),
):
    app.add_typer(sub, name=name)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _ctx() -> Any:
    from entrasync.services.context import AppContext

    return AppContext.create()


def _org(ctx: Any) -> int:
    return int(ctx.org_id())


# ---- emulator & demo ---------------------------------------------------------------------------


@app.command()
def emulator(
    users: Annotated[int, typer.Option(help="Users in the sample tenant.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the sample tenant generator.")] = 1,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).")] = 8443,
    data_dir: Annotated[Path, typer.Option(help="Where the certificates are written.")] = Path(
        "entrasync-data/emulator"
    ),
    tenants: Annotated[int, typer.Option(help="Tenants to serve (one multi-tenant app consented in each).")] = 1,
    min_users: Annotated[int, typer.Option(help="Smallest tenant when --tenants > 1.")] = 100,
    max_users: Annotated[int, typer.Option(help="Largest tenant when --tenants > 1.")] = 2000,
) -> None:
    """Serve the built-in Microsoft Graph + identity platform emulator (HTTPS)."""
    from entrasync.emulator.server import main_cli

    if users < 1 or users > 2_000_000:
        fail("--users must be between 1 and 2000000.")
    if tenants < 1 or tenants > 10_000 or not 1 <= min_users <= max_users <= 2_000_000:
        fail("--tenants must be 1..10000 and 1 <= --min-users <= --max-users <= 2000000.")
    main_cli(
        users=users,
        seed=seed,
        host=host,
        port=port,
        data_dir=data_dir,
        tenants=tenants,
        min_users=min_users,
        max_users=max_users,
    )


@app.command()
@handle_errors
def demo(
    users: Annotated[int, typer.Option(help="Users in the sample tenant.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the sample tenant.")] = 1,
    port: Annotated[int, typer.Option(help="Port of the web app.")] = 8000,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Stop after the first refresh.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Start the emulator, connect to it, run a first refresh and serve the app: no tenant needed."""
    from entrasync.cli.demo import run_demo

    run_demo(users=users, seed=seed, port=port, serve=not no_serve, as_json=as_json)


@app.command()
@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    no_scheduler: Annotated[bool, typer.Option("--no-scheduler", help="Serve the web app only.")] = False,
) -> None:
    """Serve the web app and run the daily-refresh scheduler."""
    from entrasync.cli.serving import run_server

    run_server(host=host, port=port, scheduler=not no_scheduler)


# ---- admin -------------------------------------------------------------------------------------


@admin_app.command("create")
@handle_errors
def admin_create(
    email: Annotated[str, typer.Option(help="Sign-in e-mail.")],
    name: Annotated[str, typer.Option(help="Display name.")] = "Administrator",
    role: Annotated[list[str] | None, typer.Option(help="super_admin and/or it_admin (repeat).")] = None,
    password_env: Annotated[
        str, typer.Option(help="Read the password from this environment variable.")
    ] = "ENTRASYNC_ADMIN_PASSWORD",
    as_json: JsonOpt = False,
) -> None:
    """Create the bootstrap admin (a local account), or give an existing person admin roles."""
    from entrasync.services import accounts
    from entrasync.services.context import Actor

    password = os.environ.get(password_env) or _prompt_secret("Password: ", confirm=True)
    ctx = _ctx()
    person = accounts.create_admin(
        ctx,
        _org(ctx),
        Actor.cli(),
        email=email,
        name=name,
        password=password,
        roles=role or ["super_admin", "it_admin"],
    )
    if as_json:
        emit_json(person)
    else:
        typer.echo(f"Admin {person['email']} ready (roles: {', '.join(person['roles'])}).")


def _prompt_secret(prompt: str, *, confirm: bool = False) -> str:
    if not sys.stdin.isatty():
        fail("no terminal to prompt on: pass the secret through the environment variable named in --help.")
    value = getpass.getpass(prompt)
    if confirm and getpass.getpass("Again: ") != value:
        fail("the two entries differ.")
    return value


# ---- connection --------------------------------------------------------------------------------


@app.command()
@handle_errors
def connect(
    tenant_id: Annotated[str, typer.Option(help="Directory (tenant) ID.")],
    client_id: Annotated[str | None, typer.Option(help="Application (client) ID; default ENTRASYNC_CLIENT_ID.")] = None,
    client_secret_env: Annotated[
        str, typer.Option(help="Environment variable holding the client secret.")
    ] = "ENTRASYNC_CLIENT_SECRET",
    certificate: Annotated[
        Path | None,
        typer.Option(
            help="PEM file with the app registration's certificate and its private key (instead of a secret)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Connect Microsoft Entra ID headlessly (client credentials). The secret is never echoed."""
    from entrasync.services import connection
    from entrasync.services.context import Actor

    ctx = _ctx()
    cid = client_id or ctx.config.client_id or ""
    if certificate is not None:
        try:
            pem = certificate.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read the certificate file {certificate}: {getattr(exc, 'strerror', None) or exc}.")
        creds = connection.validate_credentials(tenant_id, cid, None, pem)
    else:
        secret = os.environ.get(client_secret_env) or _prompt_secret("Client secret: ")
        creds = connection.validate_credentials(tenant_id, cid, secret)
    st = connection.connect(ctx, _org(ctx), Actor.cli(), creds)
    if as_json:
        emit_json(st.public())
    else:
        typer.echo(st.message)


@app.command()
@handle_errors
def disconnect(as_json: JsonOpt = False) -> None:
    """Forget the tenant, secret and delta state. Archives nobody."""
    from entrasync.services import connection
    from entrasync.services.context import Actor

    ctx = _ctx()
    st = connection.disconnect(ctx, _org(ctx), Actor.cli())
    if as_json:
        emit_json(st.public())
    else:
        typer.echo("Microsoft Entra ID is disconnected. Nobody was archived.")


# ---- settings ----------------------------------------------------------------------------------


def _settings_out(ctx: Any, org_id: int, s: Any, facts: dict[str, Any] | None, as_json: bool) -> None:
    from entrasync.services import connection

    data = s.public()
    data["connected"] = connection.status(ctx, org_id).connected
    if facts:
        data.update({k: v for k, v in facts.items() if k != "changed"})
        data["changed"] = facts.get("changed", [])
    if as_json:
        emit_json(data)
        return
    for k, v in data.items():
        typer.echo(f"{k:18} {v}")


@settings_app.command("show")
@handle_errors
def settings_show(as_json: JsonOpt = False) -> None:
    """Show the sync settings."""
    from entrasync.services import sync_settings

    ctx = _ctx()
    org_id = _org(ctx)
    with ctx.reader.connect() as conn:
        s = sync_settings.load(conn, org_id)
    _settings_out(ctx, org_id, s, None, as_json)


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
    as_json: JsonOpt = False,
) -> None:
    """Change sync settings: validated (the Graph filter is tried against Graph), saved atomically."""
    from entrasync.services import connection, people, sync_settings
    from entrasync.services.context import Actor
    from entrasync.services.errors import ValidationError

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
    ):
        if value is not None:
            changes[key] = value
    if recipient is not None:
        with ctx.reader.connect() as conn:
            person = people.find_by_email(conn, org_id, recipient)
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
    if not changes:
        fail("nothing to change; see `entrasync settings set --help`.")
    s, facts = sync_settings.save(ctx, org_id, Actor.cli(), changes, connection.probe_for(ctx, org_id))
    _settings_out(ctx, org_id, s, facts, as_json)


# ---- refresh, plan, runs -----------------------------------------------------------------------


@app.command()
@handle_errors
def refresh(as_json: JsonOpt = False) -> None:
    """Read Entra now and plan; apply it too in Auto-sync mode (unless the safety guard holds it)."""
    from entrasync.cli.progress import ProgressPrinter
    from entrasync.services import sync
    from entrasync.services.context import Actor

    ctx = _ctx()
    org_id = _org(ctx)
    interactive = not as_json and sys.stderr.isatty()
    progress = ProgressPrinter(enabled=interactive, expected=_last_people_read(ctx, org_id) if interactive else None)
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
    from entrasync.services import sync

    ctx = _ctx()
    org_id = _org(ctx)
    with ctx.reader.connect() as conn:
        run = sync.pending_run(conn, org_id)
        if run is None:
            if as_json:
                emit_json({"run_id": None, "changes": [], "message": "No plan is waiting for review."})
            else:
                typer.echo("No plan is waiting for review.")
            return
        changes, total = sync.plan_changes(
            conn, org_id, run["id"], tab=tab, search=search, page=page, per_page=per_page
        )
        tabs = sync.tab_counts(conn, org_id, run["id"])
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
            | {"diffs": [{"field": d[0], "old": d[1], "new": d[2], "manual_edit": d[3]} for d in c["diffs"]]}
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
    from entrasync.services import sync
    from entrasync.services.context import Actor

    ctx = _ctx()
    result = sync.apply_plan(ctx, _org(ctx), Actor.cli(), run_id=run, reject=reject or ())
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
def runs_show(run_id: int, as_json: JsonOpt = False) -> None:
    """One refresh and its changes, with kinds and reasons, applied or not."""
    from entrasync.services import runs

    ctx = _ctx()
    run = runs.get_run(ctx, _org(ctx), run_id)
    if as_json:
        emit_json(run)
        return
    typer.echo(f"Run {run['id']} ({run['trigger']}, {run['triggered_by']}): {run['outcome']}; {run['counts']}")
    if run["error"]:
        typer.echo(f"Error: {run['error']}")
    table(run["changes"], ["id", "kind", "reason", "email", "decision", "applied"])


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
    with ctx.reader.connect() as conn:
        pg = people.list_people(
            conn, _org(ctx), status=status, search=search, department=department, page=page, per_page=per_page
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
    with ctx.reader.connect() as conn:
        rows = audit.list_entries(conn, _org(ctx), person_id=person, limit=limit)
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
