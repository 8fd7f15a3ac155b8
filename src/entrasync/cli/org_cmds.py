"""``entrasync org create|list|show``: the operator's organisations (spec §10)."""

from __future__ import annotations

from typing import Annotated

import typer

from entrasync.cli.app import JsonOpt, _ctx, org_app
from entrasync.cli.output import emit_json, handle_errors, table

COLUMNS = ["id", "slug", "name", "time_zone", "connected", "people", "sign_in_path"]


@org_app.command("create")
@handle_errors
def org_create(
    slug: Annotated[str, typer.Option(help="Short name used in --org and the /o/SLUG/signin page.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    time_zone: Annotated[str, typer.Option(help="The organisation's IANA time zone.")] = "UTC",
    as_json: JsonOpt = False,
) -> None:
    """Create an organisation; then `entrasync admin create --org SLUG …` gives it its first admin."""
    from entrasync.services import orgs

    ctx = _ctx()
    orgs.create(ctx, slug, name, time_zone)
    org = orgs.show(ctx, slug)
    if as_json:
        emit_json(org)
    else:
        typer.echo(f"Organisation {org['slug']} ({org['name']}) created; its people sign in at {org['sign_in_path']}.")


@org_app.command("list")
@handle_errors
def org_list(as_json: JsonOpt = False) -> None:
    """Every organisation of this deployment."""
    from entrasync.services import orgs

    rows = orgs.list_all(_ctx())
    if as_json:
        emit_json(rows)
    else:
        table(rows, COLUMNS)


@org_app.command("show")
@handle_errors
def org_show(slug: Annotated[str, typer.Argument(help="The organisation's slug.")], as_json: JsonOpt = False) -> None:
    """One organisation."""
    from entrasync.services import orgs

    org = orgs.show(_ctx(), slug)
    if as_json:
        emit_json(org)
    else:
        for key in [*COLUMNS, "tenant_id", "created_at"]:
            typer.echo(f"{key:14} {org[key]}")
