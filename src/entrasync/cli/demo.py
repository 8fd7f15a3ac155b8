"""``entrasync demo``: the built-in emulator's sample tenant, connected and synced, then served."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import orjson
import typer

from entrasync.config import Config

DEMO_ADMIN_EMAIL = "admin@entrasync.demo"
DEMO_ADMIN_PASSWORD = "entrasync-demo-admin"  # printed for the demo; a demo data folder only


def run_demo(*, users: int, seed: int, port: int, serve: bool, as_json: bool) -> None:
    from entrasync.emulator.server import start_in_thread
    from entrasync.services import accounts, connection, sync
    from entrasync.services.context import Actor, AppContext

    base = Path(os.environ.get("ENTRASYNC_DATA_DIR", "entrasync-data")) / "demo"
    Config(data_dir=base).ensure_data_dir()  # private (0700) before the emulator writes its keys into it
    emu = start_in_thread(users=users, seed=seed, data_dir=base / "emulator")
    info = emu.info
    config = Config(
        data_dir=base,
        graph_url=info.graph_url,
        login_url=info.login_url,
        ca_bundle=Path(info.ca_bundle),
        client_id=info.client_id,
        client_secret=info.client_secret,
        public_base_url=f"http://127.0.0.1:{port}",
    )
    ctx = AppContext.create(config)
    org_id = ctx.org_id()
    actor = Actor(label="demo", super_admin=True, integrator=True)  # the demo sets itself up, as the CLI does
    accounts.create_admin(
        ctx,
        org_id,
        actor,
        email=DEMO_ADMIN_EMAIL,
        name="Demo Admin",
        password=DEMO_ADMIN_PASSWORD,
        roles=["super_admin", "it_admin"],
        reset_password=True,  # the demo's own account: a second `entrasync demo` resets it to the printed password
    )
    creds = connection.Credentials(info.tenant_id, info.client_id, info.client_secret)
    connection.connect(ctx, org_id, actor, creds)
    result = sync.refresh(ctx, org_id, trigger="cli", actor=actor)
    env = {
        "ENTRASYNC_DATA_DIR": str(base),
        "ENTRASYNC_GRAPH_URL": info.graph_url,
        "ENTRASYNC_LOGIN_URL": info.login_url,
        "ENTRASYNC_CA_BUNDLE": info.ca_bundle,
        "ENTRASYNC_CLIENT_ID": info.client_id,
    }
    (base / "demo.env").write_text("".join(f"export {k}={v}\n" for k, v in env.items()))
    summary = {
        "emulator": info.as_json(),
        "refresh": result.public(),
        "app_url": config.public_base_url if serve else None,
        "sign_in": {"email": DEMO_ADMIN_EMAIL, "password": DEMO_ADMIN_PASSWORD},
        "env_file": str(base / "demo.env"),
    }
    if as_json and not serve:
        sys.stdout.write(orjson.dumps(summary, default=str).decode() + "\n")  # one line, nothing else
    elif not as_json:
        c = result.counts
        typer.echo(f"Emulator tenant {info.tenant_id} ({users} users) at {info.graph_url}")
        typer.echo(
            f"First refresh (run {result.run_id}): {result.outcome}; {c.get('create', 0)} people created, "
            f"{result.graph_requests} Graph requests."
        )
        typer.echo("\nTry next, in another terminal (with the virtual environment active: . .venv/bin/activate):")
        typer.echo(f"  source {base / 'demo.env'}")
        typer.echo("  entrasync people list")
        typer.echo("  entrasync settings set --mode manual && entrasync refresh && entrasync plan show")
        typer.echo("  entrasync runs list")
    if not serve:
        emu.stop()
        return
    from entrasync.cli.serving import run_server

    if not as_json:
        typer.echo(f"\nentrasync is at {config.public_base_url}  sign in as {DEMO_ADMIN_EMAIL} / {DEMO_ADMIN_PASSWORD}")
        typer.echo(
            "To walk the connect steps yourself: Settings (cog) > Integrations > Microsoft Entra ID > Disconnect, "
            "then Connect and sign in at the emulator as Adele Vance (Global Administrator)."
        )
        typer.echo("Press Ctrl+C to stop.")
    try:
        run_server(host="127.0.0.1", port=port, ctx=ctx, announce=as_json,
                   ready=orjson.loads(orjson.dumps(summary, default=str)))  # fmt: skip
    finally:
        emu.stop()
