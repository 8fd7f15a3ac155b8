"""The ``entrasync`` command line's Typer apps and what every command shares (the context, the org).

Every command that acts on one organisation takes ``--org SLUG`` (default ``ENTRASYNC_ORG``, else the
default organisation), placed like ``--json``: ``entrasync refresh --org acme --json``. The option is
added to those commands when the CLI is assembled (``add_org_option``), so a new command gets it
without writing it; an unknown slug is refused in one line (organisations come from ``org create``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextvars import ContextVar
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
org_app = typer.Typer(help="Organisations of this deployment (the operator's).", no_args_is_help=True)
for sub, name in (
    (settings_app, "settings"),
    (plan_app, "plan"),
    (people_app, "people"),
    (runs_app, "runs"),
    (admin_app, "admin"),
    (audit_app, "audit"),
    (notifications_app, "notifications"),
    (overrides_app, "overrides"),
    (org_app, "org"),
):
    app.add_typer(sub, name=name)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
OrgOpt = Annotated[
    str | None,
    typer.Option("--org", help="Organisation (slug); default ENTRASYNC_ORG, else the default organisation.",
                 show_default=False),
]  # fmt: skip

# Commands about the deployment rather than one organisation: no --org.
DEPLOYMENT_COMMANDS = frozenset({"emulator", "demo", "serve", "worker", "migrate"})
DEPLOYMENT_GROUPS = frozenset({"org"})

_org_slug: ContextVar[str | None] = ContextVar("entrasync_org", default=None)


def _ctx() -> Any:
    from entrasync.services.context import AppContext

    return AppContext.create()


def _org(ctx: Any) -> int:
    """The organisation this command acts on: ``--org``, else ``ENTRASYNC_ORG``, else the default one."""
    return int(ctx.org_id(_org_slug.get()))


def _with_org(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with a keyword-only ``--org`` option that sets the organisation for its run."""
    sig = inspect.signature(func, eval_str=True)
    org_param = inspect.Parameter("org", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=OrgOpt)
    params = [*sig.parameters.values(), org_param]

    @functools.wraps(func)
    def wrapper(*args: Any, org: str | None = None, **kwargs: Any) -> Any:
        token = _org_slug.set(org)
        try:
            return func(*args, **kwargs)
        finally:
            _org_slug.reset(token)

    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


def _org_commands() -> Iterator[Any]:
    for info in app.registered_commands:
        name = info.name or (info.callback.__name__ if info.callback else "")
        if name not in DEPLOYMENT_COMMANDS:
            yield info
    for group in app.registered_groups:
        if group.name not in DEPLOYMENT_GROUPS and group.typer_instance is not None:
            yield from group.typer_instance.registered_commands


def add_org_option() -> None:
    """Give every organisation command ``--org`` (once, after all commands are registered)."""
    for info in _org_commands():
        if info.callback is not None and not getattr(info.callback, "_entrasync_org", False):
            info.callback = _with_org(info.callback)
            info.callback._entrasync_org = True
