"""Organisations (spec §10): created by the deployment's operator, each one fully separate, and the
deployment's health.

An organisation is found by its slug: ``--org SLUG`` / ``ENTRASYNC_ORG`` on the command line, the
``/o/{slug}/…`` sign-in pages, the operator API. Only ``org create`` (or the operator API) creates
one; the default organisation is the exception, created on first use so that a single-organisation
install and ``entrasync demo`` need no set-up (AppContext.org_id).
"""

from __future__ import annotations

import re
from typing import Any

from entrasync.domain.schedule import parse_time_zone
from entrasync.errors import ConfigurationError, ConflictError, NotFoundError, ValidationError
from entrasync.services.context import DEFAULT_ORG, AppContext

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
SLUG_RULE = "A slug is 1 to 64 lower-case letters, digits and hyphens, starting and ending with a letter or digit."
MAX_NAME = 200


def _validate(slug: str, name: str, time_zone: str) -> None:
    errors: dict[str, str] = {}
    if not SLUG_RE.fullmatch(slug):
        errors["slug"] = SLUG_RULE
    if not name or len(name) > MAX_NAME or any(ord(ch) < 32 for ch in name):
        errors["name"] = f"Give the organisation a name of 1 to {MAX_NAME} characters."
    try:
        parse_time_zone(time_zone)
    except ValueError as exc:
        errors["time_zone"] = str(exc)
    if errors:
        raise ValidationError(errors)


def create(ctx: AppContext, slug: str, name: str | None = None, time_zone: str = "UTC") -> int:
    """A new organisation with the §2 default settings; its id. Refused when the slug is taken."""
    slug = (slug or "").strip()
    name = (name if name is not None else slug.title()).strip()
    _validate(slug, name, time_zone)
    with ctx.write() as uow:
        if uow.orgs.id_by_slug(slug) is not None:
            raise ConflictError(f"An organisation '{slug}' exists already.")
        return uow.orgs.create(slug, name, ctx.now(), time_zone)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "slug": row["slug"],
        "name": row["name"],
        "time_zone": row["time_zone"],
        "created_at": row["created_at"],
        "connected": row.get("tenant_id") is not None,
        "tenant_id": row.get("tenant_id"),
        "people": int(row.get("people") or 0),
        "sign_in_path": f"/o/{row['slug']}/signin",
    }


def list_all(ctx: AppContext) -> list[dict[str, Any]]:
    """Every organisation, oldest first, with whether it is connected and how many people it has."""
    with ctx.read() as uow:
        return [_public(r) for r in uow.orgs.summaries()]


def show(ctx: AppContext, slug: str) -> dict[str, Any]:
    """One organisation by slug (NotFoundError naming it otherwise)."""
    with ctx.read() as uow:
        rows = uow.orgs.summaries(slug=slug)
    if not rows:
        raise NotFoundError(f"There is no organisation '{slug}'.")
    return _public(rows[0])


def by_slug(ctx: AppContext, slug: str) -> dict[str, Any] | None:
    """An organisation's id, slug and name (the sign-in pages), or None."""
    with ctx.read() as uow:
        org_id = uow.orgs.id_by_slug(slug)
        return uow.orgs.get(org_id) if org_id is not None else None


def connected_tenants(ctx: AppContext) -> list[tuple[int, str]]:
    """(org, tenant id) of every connected organisation (which tenant Sign in with Microsoft starts at)."""
    with ctx.read() as uow:
        return uow.orgs.tenants()


def default_id(ctx: AppContext) -> int:
    """The default organisation (created on first use)."""
    return ctx.org_id(DEFAULT_ORG)


def get(ctx: AppContext, org_id: int) -> dict[str, Any] | None:
    with ctx.read() as uow:
        return uow.orgs.get(org_id)


def time_zone(ctx: AppContext, org_id: int) -> str:
    with ctx.read() as uow:
        return uow.orgs.time_zone(org_id)


def healthy(ctx: AppContext) -> bool:
    """Whether the database answers (load balancers, /healthz)."""
    try:
        ctx.db.ping()
    except Exception:
        return False
    return True


def check_schema(ctx: AppContext) -> None:
    """At the start of ``serve`` and ``worker``: the schema is this version's, the job queue's included.

    Raises ConfigurationError saying what to run when it is not (with ``ENTRASYNC_AUTO_MIGRATE`` off,
    or a database whose Procrastinate tables were removed).
    """
    current, head = ctx.db.schema_revision()
    if current != head:
        raise ConfigurationError(
            f"The database schema is at revision {current or 'none'}, and this entrasync needs {head}: "
            "run `entrasync migrate` (or `alembic upgrade head`), then start again."
        )
    with ctx.read() as uow:
        ready = uow.jobs.schema_present()
    if not ready:
        raise ConfigurationError(
            "The job queue's tables (Procrastinate) are missing from the database: run `entrasync migrate` "
            "(or `alembic downgrade 0005 && alembic upgrade head` to reinstall them), then start again."
        )
