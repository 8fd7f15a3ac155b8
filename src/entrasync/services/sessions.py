"""What the web app asks of the database about who is signed in: the signed-in person's roles (re-read
on every request, so a demoted or archived person loses access at once), sessions revoked at sign-out,
and the failed sign-ins that every web process counts together."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from entrasync.domain.model import Status
from entrasync.errors import EntrasyncError
from entrasync.services.context import AppContext


class RateLimitedError(EntrasyncError):
    status = 429


@dataclass(frozen=True)
class Who:
    """The signed-in person as the role checks see them."""

    email: str
    name: str
    roles: frozenset[str]
    time_zone: str
    sessions_since: datetime | None = None  # a session begun before this is over


def who(ctx: AppContext, org_id: int, person_id: int) -> Who | None:
    """The person behind a session or token, or None when they are archived or gone."""
    with ctx.read() as uow:
        row: dict[str, Any] | None = uow.people.principal_row(org_id, person_id)
        if row is None or row["status"] == Status.ARCHIVED.value:
            return None
        zone = row["time_zone"] or uow.orgs.time_zone(org_id)
    return Who(email=row["email"], name=row["display_name"] or row["email"], roles=frozenset(row["roles"]),
               time_zone=zone, sessions_since=row["sessions_since"])  # fmt: skip


def revoke_session(ctx: AppContext, sid: object, ttl_seconds: int) -> None:
    """Sign-out: remember the session id until the cookie would have expired anyway, so a copy of the
    cookie stops working now. Expired entries are purged on the way."""
    if not isinstance(sid, str) or not sid:
        return
    now = ctx.now()
    with ctx.write() as uow:
        uow.auth.revoke_session(sid, now + timedelta(seconds=ttl_seconds), now)


def session_revoked(ctx: AppContext, sid: object) -> bool:
    if not isinstance(sid, str):
        return True  # every signed-in session carries an id
    with ctx.read() as uow:
        return uow.auth.session_revoked(sid)


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
        with self.ctx.read() as uow:
            counts = uow.auth.failures_since((account, address), self.ctx.now() - self.window)
        if counts.get(account, 0) >= self.per_account or counts.get(address, 0) >= self.per_address:
            raise RateLimitedError("Too many failed sign-ins. Wait a few minutes, then try again.")

    def failed(self, email: str, ip: str) -> None:
        now = self.ctx.now()
        with self.ctx.write() as uow:
            uow.auth.add_failures(self._keys(email, ip), now, now - self.window)

    def succeeded(self, email: str, ip: str) -> None:
        account, _ = self._keys(email, ip)
        with self.ctx.write() as uow:
            uow.auth.clear_failures(account)
