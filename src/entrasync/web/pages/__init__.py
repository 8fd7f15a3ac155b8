"""Server-rendered pages (§7). Each handler checks the role it needs, acts through the services on the
signed-in person's organisation only, and answers bad input with an inline message, never a 500."""

from __future__ import annotations

from fastapi import APIRouter

from entrasync.web.pages import integrations, me, microsoft, people, signin, user_sync

router = APIRouter(include_in_schema=False)
for part in (signin.router, microsoft.router, people.router, integrations.router, user_sync.router, me.router):
    router.include_router(part)

__all__ = ["router"]
