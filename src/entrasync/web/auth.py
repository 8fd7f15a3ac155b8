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
from datetime import timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from fastapi import Request
from starlette.responses import Response

from entrasync.adapters.db import tables as t
from entrasync.domain.model import Role
from entrasync.errors import EntrasyncError, PermissionDeniedError
from entrasync.services import api_tokens
from entrasync.services.context import Actor, AppContext

COOKIE = "entrasync_session"
SESSION_TTL = 12 * 3600
GLOBAL_ADMIN_ROLE = "62e90394-69f5-4237-9190-012177145e10"


class NotSignedInError(EntrasyncError):
    status = 401


class RateLimitedError(EntrasyncError):
    status = 429


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
        self.data = {"sid": secrets.token_urlsafe(16), "csrf": secrets.token_urlsafe(24), "iat": int(time.time())}
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


def load_principal(ctx: AppContext, org_id: int, person_id: int, *, global_admin: bool, via: str) -> Principal | None:
    p = t.people
    with ctx.reader.connect() as conn:
        row = conn.execute(
            sa.select(p.c.email, p.c.display_name, p.c.status, p.c.time_zone).where(
                p.c.id == person_id, p.c.org_id == org_id
            )
        ).first()
        if row is None or row[2] == "archived":
            return None
        roles = frozenset(
            conn.execute(sa.select(t.person_roles.c.role).where(t.person_roles.c.person_id == person_id)).scalars()
        )
        org_tz = conn.execute(sa.select(t.organisations.c.time_zone).where(t.organisations.c.id == org_id)).scalar()
    return Principal(
        person_id=person_id,
        org_id=org_id,
        email=row[0],
        name=row[1] or row[0],
        roles=roles,
        global_admin=global_admin,
        via=via,
        time_zone=row[3] or org_tz or "UTC",
    )


def revoke_session(ctx: AppContext, sid: object) -> None:
    """Sign-out: remember the session id until the cookie would have expired anyway, so a copy of
    the cookie stops working now. Expired entries are purged on the way."""
    if not isinstance(sid, str) or not sid:
        return
    now = ctx.now()
    rs = t.revoked_sessions
    with ctx.engine.begin() as conn:
        conn.execute(sa.delete(rs).where(rs.c.expires_at < now))
        if conn.execute(sa.select(rs.c.sid).where(rs.c.sid == sid)).first() is None:
            conn.execute(sa.insert(rs).values(sid=sid, expires_at=now + timedelta(seconds=SESSION_TTL)))


def _session_revoked(ctx: AppContext, sid: object) -> bool:
    if not isinstance(sid, str):
        return True  # every signed-in session carries an id (Session.rotate)
    with ctx.reader.connect() as conn:
        rs = t.revoked_sessions
        return conn.execute(sa.select(rs.c.sid).where(rs.c.sid == sid)).first() is not None


def current_principal(request: Request) -> Principal | None:
    """The principal from a Bearer token, else from the session cookie; None when anonymous."""
    if hasattr(request.state, "principal"):
        cached: Principal | None = request.state.principal
        return cached
    ctx: AppContext = request.app.state.ctx
    principal: Principal | None = None
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        found = api_tokens.resolve(ctx, auth[7:].strip())
        if found is None:
            raise NotSignedInError("The API token is not valid (deleted or mistyped).")
        principal = load_principal(ctx, found[0], found[1], global_admin=False, via="token")
        if principal is None:
            raise NotSignedInError("The API token's owner can no longer sign in.")
    else:
        sess = session_of(request)
        pid, oid = sess.get("pid"), sess.get("org")
        if isinstance(pid, int) and isinstance(oid, int):
            if _session_revoked(ctx, sess.get("sid")):
                sess.clear()
            else:
                principal = load_principal(ctx, oid, pid, global_admin=bool(sess.get("ga")), via="session")
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


def check_csrf(request: Request, submitted: str | None) -> None:
    """Every state-changing request made with the session cookie carries the session's CSRF token."""
    principal = getattr(request.state, "principal", None)
    if isinstance(principal, Principal) and principal.via == "token":
        return
    expected = session_of(request).get("csrf")
    if not isinstance(expected, str) or not submitted or not secrets.compare_digest(expected, submitted):
        raise CsrfError("The form expired or did not come from this site. Reload the page and try again.")


class SignInLimiter:
    """Failed local sign-ins, counted in the database so the limit holds across every web process.

    At most ``per_account`` failures per (e-mail, client address) and ``per_address`` per client
    address (a spray of e-mails from one place) within ``window`` seconds. Keys are stored as SHA-256
    digests. A success clears that (e-mail, address) count; rows older than the window are pruned.
    """

    def __init__(self, ctx: AppContext, per_account: int = 10, per_address: int = 100, window: float = 300.0) -> None:
        self.ctx = ctx
        self.per_account = per_account
        self.per_address = per_address
        self.window = timedelta(seconds=window)

    @staticmethod
    def _keys(email: str, ip: str) -> tuple[str, str]:
        account = hashlib.sha256(f"account\0{email.strip().lower()}\0{ip}".encode()).hexdigest()
        address = hashlib.sha256(f"address\0{ip}".encode()).hexdigest()
        return account, address

    def check(self, email: str, ip: str) -> None:
        account, address = self._keys(email, ip)
        f = t.sign_in_failures
        since = self.ctx.now() - self.window
        with self.ctx.reader.connect() as conn:
            counts: dict[str, int] = dict(
                conn.execute(
                    sa.select(f.c.key, sa.func.count())
                    .where(f.c.key.in_((account, address)), f.c.at > since)
                    .group_by(f.c.key)
                ).all()
            )
        if counts.get(account, 0) >= self.per_account or counts.get(address, 0) >= self.per_address:
            raise RateLimitedError("Too many failed sign-ins. Wait a few minutes, then try again.")

    def failed(self, email: str, ip: str) -> None:
        now = self.ctx.now()
        f = t.sign_in_failures
        with self.ctx.engine.begin() as conn:
            conn.execute(sa.delete(f).where(f.c.at <= now - self.window))
            conn.execute(sa.insert(f), [{"key": key, "at": now} for key in self._keys(email, ip)])

    def succeeded(self, email: str, ip: str) -> None:
        account, _ = self._keys(email, ip)
        f = t.sign_in_failures
        with self.ctx.engine.begin() as conn:
            conn.execute(sa.delete(f).where(f.c.key == account))
