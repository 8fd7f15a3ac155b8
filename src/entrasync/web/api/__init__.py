"""REST API under /api/v1: the same actions and role checks as the pages (§7).

Authentication is the session cookie (writes then need the ``X-CSRF-Token`` header, whose value
``GET /api/v1/me`` returns) or ``Authorization: Bearer <personal API token>``. A token acts as its
owner, except that it never carries a Microsoft Global Administrator sign-in: through a token only
IT admins manage the integration. Errors are ``{"detail": ..., "errors": {field: message}}``.
"""

from __future__ import annotations

from fastapi import APIRouter

from entrasync.web.api import me, operator, people, sync
from entrasync.web.api.deps import ErrorOut
from entrasync.web.api.deps import error_doc as _error

# The error bodies the app really sends (app.py's handlers), not FastAPI's default 422 schema.
router = APIRouter(
    prefix="/api/v1",
    responses={
        400: _error("The request cannot be stored or searched for"),
        401: _error("Not signed in"),
        403: _error("Not allowed"),
        404: _error("No such object in your organisation"),
        409: _error("Conflicts with the current state"),
        422: _error("The request is not valid"),
    },
)
for part in (people.router, sync.router, me.router, operator.router):
    router.include_router(part)

__all__ = ["ErrorOut", "router"]
