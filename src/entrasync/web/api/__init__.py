"""REST API under /api/v1: the same actions and role checks as the pages (§7), and what a host app
builds on (§11): the change feed, webhooks, cursor-paged lists and exact look-ups.

Authentication is ``Authorization: Bearer <personal API token>`` (scopes read, write, admin; a token
never carries a Microsoft Global Administrator sign-in, so through a token only IT admins manage the
integration) or the session cookie (writes then need the ``X-CSRF-Token`` header, whose value
``GET /api/v1/me`` returns). A 401 carries ``WWW-Authenticate: Bearer``. Errors are RFC 9457 problems
(``application/problem+json``) with a ``detail`` sentence and, for invalid input, ``errors`` per field.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from entrasync.web.api import audit, events, explain, me, operator, overrides, people, runs, sync, webhooks
from entrasync.web.api.deps import ErrorOut, declared_security
from entrasync.web.api.deps import error_doc as _error

# The error bodies the app really sends (app.py's handlers), not FastAPI's default 422 schema.
router = APIRouter(
    prefix="/api/v1",
    responses={
        400: _error("The request cannot be stored or searched for"),
        401: _error("Not signed in, or the token was refused (see WWW-Authenticate)"),
        403: _error("Not allowed (role, or the token's scopes)"),
        404: _error("No such object in your organisation"),
        409: _error("Conflicts with the current state"),
        422: _error("The request is not valid"),
    },
)
# A person's API (a token or a session, declared on every operation); the operator API has its own token.
persons = APIRouter(dependencies=[Depends(declared_security)])
for part in (explain.router, people.router, audit.router, sync.router, runs.router, overrides.router, me.router,
             events.router, webhooks.router):  # fmt: skip
    persons.include_router(part)
router.include_router(persons)
router.include_router(operator.router)

__all__ = ["ErrorOut", "router"]
