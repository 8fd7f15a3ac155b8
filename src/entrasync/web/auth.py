"""Who is asking: encrypted session cookies, personal API tokens, CSRF tokens, role checks, and a
sign-in rate limit.

The session lives in the cookie itself, encrypted and authenticated (Fernet with a key derived from
the deployment secret), so several server processes share sessions without a table. The cookie holds
ids only; roles and status are re-read from the database on every request, so a demoted or archived
person loses access at once.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken
from fastapi import Request
from starlette.responses import Response

from entrasync.domain.model import Role
from entrasync.domain.states import TokenScope
from entrasync.errors import EntrasyncError, PermissionDeniedError
from entrasync.services import api_tokens, sessions
from entrasync.services.context import Actor, AppContext
from entrasync.services.sessions import RateLimitedError, SignInLimiter

COOKIE = "entrasync_session"
SESSION_TTL = 12 * 3600
GLOBAL_ADMIN_ROLE = "62e90394-69f5-4237-9190-012177145e10"


class NotSignedInError(EntrasyncError):
    """401. ``invalid_token``: a Bearer token was sent and refused (RFC 6750 §3.1 ``error="invalid_token"``)."""

    status = 401

    def __init__(self, message: str, *, invalid_token: bool = False) -> None:
        super().__init__(message)
        self.invalid_token = invalid_token

    @property
    def www_authenticate(self) -> str:
        """The challenge a 401 carries (RFC 9110 §11.6.1, RFC 6750 §3): a Bearer token is what the API takes."""
        if not self.invalid_token:
            return 'Bearer realm="entrasync"'
        text = self.message.replace("\\", "").replace('"', "'")
        return f'Bearer realm="entrasync", error="invalid_token", error_description="{text}"'


class CsrfError(EntrasyncError):
    status = 403


@dataclass
class Session:
    """The decrypted cookie. ``dirty`` marks it for re-sending with the response."""

    data: dict[str, Any] = field(default_factory=dict)
    dirty: bool = False

    @property
    def csrf(self) -> str:
        token = self.data.get("csrf")
        if not isinstance(token, str):
            token = secrets.token_urlsafe(24)
            self.data["csrf"] = token
            self.dirty = True
        return token

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.dirty = True

    def pop(self, key: str, default: Any = None) -> Any:
        if key in self.data:
            self.dirty = True
        return self.data.pop(key, default)

    def rotate(self, **values: Any) -> None:
        """A fresh session (new id and CSRF token) at sign-in: a fixated pre-login cookie is useless."""
        self.data = {"sid": secrets.token_urlsafe(16), "csrf": secrets.token_urlsafe(24), "iat": time.time()}
        self.data.update(values)
        self.dirty = True

    def clear(self) -> None:
        self.data = {}
        self.dirty = True


class SessionCodec:
    def __init__(self, secret_key: str) -> None:
        digest = hashlib.sha256(b"entrasync:web-session:v1:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def dumps(self, data: dict[str, Any]) -> str:
        return self._fernet.encrypt(orjson.dumps(data)).decode()

    def loads(self, token: str) -> dict[str, Any]:
        try:
            data = orjson.loads(self._fernet.decrypt(token.encode(), ttl=SESSION_TTL))
        except (InvalidToken, orjson.JSONDecodeError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


def session_of(request: Request) -> Session:
    sess = getattr(request.state, "session", None)
    if isinstance(sess, Session):
        return sess
    codec: SessionCodec = request.app.state.codec
    raw = request.cookies.get(COOKIE)
    sess = Session(codec.loads(raw) if raw else {})
    request.state.session = sess
    return sess


def write_session(request: Request, response: Response) -> None:
    sess = getattr(request.state, "session", None)
    if not isinstance(sess, Session) or not sess.dirty:
        return
    secure = bool(request.app.state.secure_cookies)
    if not sess.data:
        response.delete_cookie(COOKIE, path="/", secure=secure, httponly=True, samesite="lax")
        return
    codec: SessionCodec = request.app.state.codec
    response.set_cookie(
        COOKIE, codec.dumps(sess.data), max_age=SESSION_TTL, path="/", secure=secure, httponly=True, samesite="lax"
    )


@dataclass(frozen=True)
class Principal:
    """The signed-in person, as the role checks see them."""

    person_id: int
    org_id: int
    email: str
    name: str
    roles: frozenset[str]
    global_admin: bool  # signed in at Microsoft, in this session, as a Global Administrator
    via: str  # "session" or "token"
    time_zone: str
    scopes: frozenset[TokenScope] = frozenset(TokenScope)  # a session may do all its owner may

    def allows(self, needed: TokenScope) -> bool:
        """Whether this caller's token scopes (a session has them all) cover ``needed``."""
        return any(s.allows(needed) for s in self.scopes)

    @property
    def is_super_admin(self) -> bool:
        return Role.SUPER_ADMIN.value in self.roles

    @property
    def is_it_admin(self) -> bool:
        return Role.IT_ADMIN.value in self.roles

    @property
    def is_admin(self) -> bool:
        return self.is_super_admin or self.is_it_admin

    @property
    def can_integrate(self) -> bool:
        """Spec §2: an IT admin, or a Super admin who signed in at Microsoft as a Global Administrator."""
        return self.is_it_admin or (self.is_super_admin and self.global_admin)

    @property
    def can_review(self) -> bool:
        """Spec §1: Super admins review and apply proposed changes; so do those who set up the sync."""
        return self.is_super_admin or self.can_integrate

    @property
    def actor(self) -> Actor:
        return Actor(
            label=self.email, person_id=self.person_id, super_admin=self.is_super_admin, integrator=self.can_integrate
        )


def load_principal(
    ctx: AppContext,
    org_id: int,
    person_id: int,
    *,
    global_admin: bool,
    via: str,
    scopes: frozenset[TokenScope] = frozenset(TokenScope),
    signed_in_at: object = None,
) -> Principal | None:
    """The person behind a session or token; None when archived, gone, or (for a session signed in at
    ``signed_in_at``, a Unix time) when their sessions were ended after it (a password reset)."""
    found = sessions.who(ctx, org_id, person_id)
    if found is None:
        return None
    ended = found.sessions_since
    if (
        via == "session"
        and ended is not None
        and not (isinstance(signed_in_at, int | float) and signed_in_at >= ended.timestamp())
    ):
        return None
    return Principal(
        person_id=person_id,
        org_id=org_id,
        email=found.email,
        name=found.name,
        roles=found.roles,
        global_admin=global_admin,
        via=via,
        time_zone=found.time_zone,
        scopes=scopes,
    )


def revoke_session(ctx: AppContext, sid: object) -> None:
    sessions.revoke_session(ctx, sid, SESSION_TTL)


def current_principal(request: Request) -> Principal | None:
    """The principal from a Bearer token, else from the session cookie; None when anonymous."""
    if hasattr(request.state, "principal"):
        cached: Principal | None = request.state.principal
        return cached
    ctx: AppContext = request.app.state.ctx
    principal: Principal | None = None
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        try:
            found = api_tokens.resolve(ctx, auth[7:].strip())
        except api_tokens.TokenRefusedError as exc:
            raise NotSignedInError(str(exc), invalid_token=True) from None
        if found is None:
            raise NotSignedInError("The API token is not valid (revoked or mistyped).", invalid_token=True)
        principal = load_principal(
            ctx, found.org_id, found.person_id, global_admin=False, via="token", scopes=found.scopes
        )
        if principal is None:
            raise NotSignedInError("The API token's owner can no longer sign in.", invalid_token=True)
    else:
        sess = session_of(request)
        pid, oid = sess.get("pid"), sess.get("org")
        if isinstance(pid, int) and isinstance(oid, int):
            if sessions.session_revoked(ctx, sess.get("sid")):
                sess.clear()
            else:
                principal = load_principal(ctx, oid, pid, global_admin=bool(sess.get("ga")), via="session",
                                           signed_in_at=sess.get("iat"))  # fmt: skip
                if principal is None:
                    sess.clear()
    request.state.principal = principal
    return principal


def require_user(request: Request) -> Principal:
    principal = current_principal(request)
    if principal is None:
        raise NotSignedInError("Sign in first.")
    return principal


def require_super_admin(request: Request) -> Principal:
    principal = require_user(request)
    if not principal.is_super_admin:
        raise PermissionDeniedError("Only a Super admin can change people.")
    return principal


def require_admin(request: Request) -> Principal:
    principal = require_user(request)
    if not principal.is_admin:
        raise PermissionDeniedError("Only a Super admin or an IT admin can see this.")
    return principal


INTEGRATION_DENIED = (
    "Only an IT admin, or a Super admin signed in at Microsoft as a Global Administrator, can set up or "
    "change the Microsoft Entra ID sync."
)


def require_integration(request: Request) -> Principal:
    principal = require_user(request)
    if not principal.can_integrate:
        raise PermissionDeniedError(INTEGRATION_DENIED)
    return principal


REVIEW_DENIED = (
    "Only a Super admin, or an admin who can set up the Microsoft Entra ID sync, can review and apply proposed changes."
)


def require_reviewer(request: Request) -> Principal:
    principal = require_user(request)
    if not principal.can_review:
        raise PermissionDeniedError(REVIEW_DENIED)
    return principal


def require_scope(principal: Principal, needed: TokenScope) -> None:
    """A token acts only within its scopes (§7): read for reading, write for changes, admin for the
    integration, webhooks and tokens."""
    if not principal.allows(needed):
        raise PermissionDeniedError(
            f"This API token lacks the {needed.value} scope. Create a token with the {needed.value} scope on My "
            "settings or with `entrasync tokens create --scope`."
        )


def check_csrf(request: Request, submitted: str | None) -> None:
    """Every state-changing request made with the session cookie carries the session's CSRF token."""
    principal = getattr(request.state, "principal", None)
    if isinstance(principal, Principal) and principal.via == "token":
        return
    expected = session_of(request).get("csrf")
    if not isinstance(expected, str) or not submitted or not secrets.compare_digest(expected, submitted):
        raise CsrfError("The form expired or did not come from this site. Reload the page and try again.")


__all__ = ["RateLimitedError", "SignInLimiter"]
