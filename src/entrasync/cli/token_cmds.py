"""``entrasync tokens create|list|revoke``: personal API tokens without a browser (spec §7). The CLI
runs on the deployment as the operator of an organisation; ``--email`` names whose token it is."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from entrasync.cli.app import JsonOpt, _ctx, _org, app
from entrasync.cli.output import emit_json, handle_errors, table

tokens_app = typer.Typer(help="Personal API tokens (scoped, expiring, revocable).", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
EmailOpt = Annotated[str, typer.Option("--email", help="Whose token: the person's e-mail.")]


def _owner(ctx: Any, org_id: int, email: str) -> int:
    from entrasync.errors import NotFoundError
    from entrasync.services import people

    person = people.find_by_email(ctx, org_id, email)
    if person is None or person["status"] == "archived":
        raise NotFoundError(
            f"Nobody active has the e-mail {email} in this organisation. Create the account first with "
            "`entrasync admin create`, or check --org."
        )
    return int(person["id"])


@tokens_app.command("create")
@handle_errors
def tokens_create(
    email: EmailOpt,
    name: Annotated[str, typer.Option(help="What the token is for.")],
    scope: Annotated[str, typer.Option(help="read, write or admin (each implies the ones before it).")] = "read",
    expires_in_days: Annotated[int, typer.Option(help="Days until it stops working (1-366).")] = 90,
    as_json: JsonOpt = False,
) -> None:
    """Create a token and print it (once: only its hash is stored)."""
    from entrasync.services import api_tokens

    ctx = _ctx()
    org = _org(ctx)
    record, token = api_tokens.create(ctx, org, _owner(ctx, org, email), name, scopes=[scope],
                                      expires_in_days=expires_in_days)  # fmt: skip
    if as_json:
        emit_json({**record, "token": token})
    else:
        typer.echo(token)
        typer.echo(f"token {record['id']} ({', '.join(record['scopes'])}) expires {record['expires_at']:%Y-%m-%d}",
                   err=True)  # fmt: skip


@tokens_app.command("list")
@handle_errors
def tokens_list(email: EmailOpt, as_json: JsonOpt = False) -> None:
    """A person's tokens, revoked and expired ones included (never the tokens themselves)."""
    from entrasync.services import api_tokens

    ctx = _ctx()
    org = _org(ctx)
    rows = api_tokens.list_for(ctx, org, _owner(ctx, org, email))
    if as_json:
        emit_json(rows)
    else:
        table(rows, ["id", "name", "scopes", "status", "created_at", "expires_at", "last_used_at"])


@tokens_app.command("revoke")
@handle_errors
def tokens_revoke(token_id: int, email: EmailOpt, as_json: JsonOpt = False) -> None:
    """Revoke a token: it stops working at once."""
    from entrasync.services import api_tokens

    ctx = _ctx()
    org = _org(ctx)
    api_tokens.revoke(ctx, org, _owner(ctx, org, email), token_id)
    if as_json:
        emit_json({"revoked": token_id})
    else:
        typer.echo(f"token {token_id} revoked")
