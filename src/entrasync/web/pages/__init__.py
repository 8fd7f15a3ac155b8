"""Server-rendered pages (§7). Each handler checks the role it needs, acts through the services on the
signed-in person's organisation only, and answers bad input with an inline message, never a 500."""

from __future__ import annotations

from fastapi import APIRouter

from entrasync.web.pages import (
    explain,
    integrations,
    mapping,
    me,
    microsoft,
    organisation,
    overrides,
    people,
    runs,
    signin,
    user_sync,
    webhooks,
)

router = APIRouter(include_in_schema=False)
for part in (signin.router, microsoft.router, explain.router, people.router, organisation.router, integrations.router,
             webhooks.router, user_sync.router, runs.router, overrides.router, mapping.router, me.router):  # fmt: skip
    router.include_router(part)

__all__ = ["router"]
