"""The ``entrasync`` command line's Typer apps and what every command shares (the context, the org)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

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
overrides_app = typer.Typer(help="Changes rejected in review (overrides): list and revoke.", no_args_is_help=True)
for sub, name in (
    (settings_app, "settings"),
    (plan_app, "plan"),
    (people_app, "people"),
    (runs_app, "runs"),
    (admin_app, "admin"),
    (audit_app, "audit"),
    (notifications_app, "notifications"),
    (overrides_app, "overrides"),
):
    app.add_typer(sub, name=name)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _ctx() -> Any:
    from entrasync.services.context import AppContext

    return AppContext.create()


def _org(ctx: Any) -> int:
    return int(ctx.org_id())
