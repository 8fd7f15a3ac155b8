"""Commands that set a deployment up: the emulator, the demo, serve, admin accounts, connect."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from entrasync.cli.app import JsonOpt, _ctx, _org, admin_app, app
from entrasync.cli.output import emit_json, fail, handle_errors
from entrasync.cli.ports import check_port, ensure_free
from entrasync.config import make_folder

# ---- emulator & demo ---------------------------------------------------------------------------


@app.command()
@handle_errors
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
    as_json: Annotated[bool, typer.Option("--json", help="The ready line is JSON (it always is).")] = True,
) -> None:
    """Serve the built-in Microsoft Graph + identity platform emulator (HTTPS); prints one JSON line
    (URLs, CA bundle, tenant and app credentials) when it accepts requests, and nothing else on stdout."""
    from entrasync.emulator.server import main_cli

    if users < 1 or users > 2_000_000:
        fail("--users must be between 1 and 2000000.")
    if tenants < 1 or tenants > 10_000 or not 1 <= min_users <= max_users <= 2_000_000:
        fail("--tenants must be 1..10000 and 1 <= --min-users <= --max-users <= 2000000.")
    check_port(port)
    ensure_free(host, port, "the emulator")
    make_folder(data_dir, "--data-dir")
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
    """Start the emulator, connect to it, run a first refresh and serve the app: no tenant needed.
    With --json, one JSON line once the app accepts requests (or after the refresh, with --no-serve)."""
    from entrasync.cli.demo import run_demo

    if not 1 <= users <= 2_000_000:
        fail("--users must be between 1 and 2000000.")
    check_port(port, allow_zero=False)
    if not no_serve:
        ensure_free("127.0.0.1", port, "the web app")  # before the first refresh, not after it
    run_demo(users=users, seed=seed, port=port, serve=not no_serve, as_json=as_json)


@app.command()
@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one, named in the JSON line).")] = 8000,
    as_json: JsonOpt = False,
) -> None:
    """Serve the web app; prints one JSON line when ready (with or without --json). On SQLite it also runs
    the background jobs (refreshes, the daily schedule); on PostgreSQL it queues them for `entrasync worker`."""
    from entrasync.cli.serving import run_server

    check_port(port)
    ensure_free(host, port, "the web app")
    run_server(host=host, port=port)


@app.command()
@handle_errors
def worker(
    concurrency: Annotated[int, typer.Option(help="Jobs this process runs at once (refreshes are threads).")] = 1,
) -> None:
    """Run refresh jobs, the daily schedule and other background work (PostgreSQL); prints one JSON line
    when ready and stops on SIGTERM after the refresh in progress. Run any number, on any machines."""
    from entrasync.cli.serving import run_worker

    if not 1 <= concurrency <= 64:
        fail("--concurrency must be between 1 and 64.")
    run_worker(concurrency=concurrency)


@app.command()
@handle_errors
def migrate(as_json: JsonOpt = False) -> None:
    """Bring the database schema (the job queue's included) to this version; safe to run again."""
    from entrasync.config import Config
    from entrasync.services.context import AppContext

    ctx = AppContext.create(Config(auto_migrate=True))
    current, head = ctx.db.schema_revision()
    if as_json:
        emit_json({"revision": current, "head": head})
    else:
        typer.echo(f"The database schema is at revision {current}.")


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
    reset_password: Annotated[
        bool, typer.Option("--reset-password", help="The account exists: set a new password and end its sessions.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a local admin account with exactly the roles given (default: both), or give a person who has
    no password yet (a synced one) a local account. An existing account needs --reset-password."""
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
        reset_password=reset_password,
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
    check: Annotated[
        bool, typer.Option("--check", help="Only test the credential, permissions and user count; store nothing.")
    ] = False,
    new_tenant: Annotated[
        bool, typer.Option("--new-tenant", help="Confirm connecting another tenant than the one people came from.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Connect Microsoft Entra ID headlessly (client credentials). The secret is never echoed.

    Connecting the same tenant again (rotating the secret or certificate) keeps the settings, the
    schedule, the delta state and the overrides.
    """
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
    if check:
        result = connection.test(ctx, _org(ctx), creds)
        if as_json:
            emit_json(result)
        else:
            typer.echo(result["message"])
        if not result["ok"]:
            raise typer.Exit(1)
        return
    st = connection.connect(ctx, _org(ctx), Actor.cli(), creds, new_tenant=new_tenant)
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
    was = connection.status(ctx, _org(ctx)).connected
    st = connection.disconnect(ctx, _org(ctx), Actor.cli())
    if as_json:
        emit_json({**st.public(), "was_connected": was})
    elif was:
        typer.echo("Microsoft Entra ID is disconnected. Nobody was archived.")
    else:
        typer.echo("Microsoft Entra ID was not connected; nothing to do.")
