"""``entrasync webhooks create|list|show|enable|disable|deliveries`` (spec §11)."""

from __future__ import annotations

from typing import Annotated

import typer

from entrasync.cli.app import JsonOpt, _ctx, _org, app
from entrasync.cli.output import emit_json, handle_errors, table

webhooks_app = typer.Typer(help="Webhook endpoints and their delivery log.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")
COLUMNS = ["id", "url", "status", "event_types", "failing_since", "last_success_at", "created_at"]


@webhooks_app.command("create")
@handle_errors
def webhooks_create(
    url: Annotated[str, typer.Option(help="Where to POST events (http or https).")],
    event_type: Annotated[
        list[str] | None, typer.Option("--event-type", help="person.created, … (repeat; none: every type).")
    ] = None,
    description: Annotated[str | None, typer.Option(help="What the endpoint is.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register an endpoint and print its signing secret (once)."""
    from entrasync.services import webhooks
    from entrasync.services.context import Actor

    ctx = _ctx()
    record, secret = webhooks.create(ctx, _org(ctx), Actor.cli(), url=url, event_types=event_type or [],
                                     description=description)  # fmt: skip
    if as_json:
        emit_json({**record, "secret": secret})
    else:
        typer.echo(secret)
        typer.echo(f"webhook {record['id']} → {record['url']} (verify signatures with the secret above)", err=True)


@webhooks_app.command("list")
@handle_errors
def webhooks_list(as_json: JsonOpt = False) -> None:
    """The organisation's endpoints."""
    from entrasync.services import webhooks

    ctx = _ctx()
    rows = webhooks.list_page(ctx, _org(ctx), limit=500).items
    if as_json:
        emit_json(rows)
    else:
        table(rows, COLUMNS)


@webhooks_app.command("show")
@handle_errors
def webhooks_show(webhook_id: int, as_json: JsonOpt = False) -> None:
    """One endpoint, with its deliveries per status."""
    from entrasync.services import webhooks

    ctx = _ctx()
    record = webhooks.get(ctx, _org(ctx), webhook_id)
    if as_json:
        emit_json(record)
    else:
        table([record], [*COLUMNS, "disabled_reason", "deliveries"])


def _set(webhook_id: int, enabled: bool, as_json: bool) -> None:
    from entrasync.services import webhooks
    from entrasync.services.context import Actor

    ctx = _ctx()
    record = webhooks.set_enabled(ctx, _org(ctx), Actor.cli(), webhook_id, enabled)
    if as_json:
        emit_json(record)
    else:
        typer.echo(f"webhook {webhook_id} is {record['status']}")


@webhooks_app.command("disable")
@handle_errors
def webhooks_disable(webhook_id: int, as_json: JsonOpt = False) -> None:
    """Stop sending to an endpoint; its deliveries wait."""
    _set(webhook_id, False, as_json)


@webhooks_app.command("enable")
@handle_errors
def webhooks_enable(webhook_id: int, as_json: JsonOpt = False) -> None:
    """Send to an endpoint again, from its first waiting delivery."""
    _set(webhook_id, True, as_json)


@webhooks_app.command("deliveries")
@handle_errors
def webhooks_deliveries(
    webhook_id: int,
    limit: Annotated[int, typer.Option(help="Attempts to show, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The delivery log: each attempt, with the event, the answer and how long it took."""
    from entrasync.services import webhooks

    ctx = _ctx()
    rows = webhooks.attempts_page(ctx, _org(ctx), webhook_id, limit=limit).items
    if as_json:
        emit_json(rows)
    else:
        table(rows, ["id", "at", "event_id", "event_type", "person_id", "status_code", "error", "duration_ms",
                     "delivery_status"])  # fmt: skip
