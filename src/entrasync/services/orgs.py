"""Organisations (spec §10) and the deployment's health."""

from __future__ import annotations

from typing import Any

from entrasync.errors import ConflictError
from entrasync.services.context import AppContext


def create(ctx: AppContext, slug: str, name: str | None = None, time_zone: str = "UTC") -> int:
    """A new organisation, with the §2 default settings."""
    with ctx.write() as uow:
        if uow.orgs.id_by_slug(slug) is not None:
            raise ConflictError(f"An organisation '{slug}' exists already.")
        return uow.orgs.create(slug, name or slug.title(), ctx.now(), time_zone)


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
