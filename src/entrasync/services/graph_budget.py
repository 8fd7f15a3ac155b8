"""The Graph budgets every worker shares (spec §10): one per tenant, one for the app across tenants.

Graph throttles per application + tenant and per application (domain.graph_budget has Microsoft's
numbers). Each refresh's Graph client spends from both through this hook before every request, so
a thousand refreshes due at the same minute stay under the app's limit whichever worker runs them,
and a tenant that answers 429 is blocked for its ``Retry-After`` for every worker, while the app's
budget, and with it every other tenant, is untouched.

Cheap by design: units are reserved from the database in chunks (``CHUNK``), so a refresh of an
unchanged tenant makes one small write transaction for its budget, a 100,000-user first sync about
ten; what a client reserved and did not spend is simply not used (the budgets err on the safe side).
Windows are fixed (a window's units come back all at once when it ends), measured on the real clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from entrasync.adapters.db.uow import UnitOfWork
from entrasync.domain.graph_budget import APP_LIMIT, Limit, parse_limit, tenant_limit
from entrasync.services.context import AppContext

log = logging.getLogger(__name__)

CHUNK = 20  # resource units reserved per database round trip
MAX_SLEEP = 5.0  # seconds between looks at a spent budget


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SharedBudget:
    """The budgets of one tenant and the app, as the Graph client's ``graph_budget`` hook."""

    def __init__(
        self,
        ctx: AppContext,
        tenant_id: str,
        client_id: str,
        *,
        users: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.ctx = ctx
        tenant = parse_limit(ctx.config.graph_tenant_budget) if ctx.config.graph_tenant_budget else tenant_limit(users)
        app = parse_limit(ctx.config.graph_app_budget) if ctx.config.graph_app_budget else APP_LIMIT
        self.tenant_key = f"tenant:{tenant_id.lower()}"
        self.budgets = [(self.tenant_key, tenant), (f"app:{client_id.lower()}", app)]
        self.chunk = min(CHUNK, tenant.units, app.units)
        self.waited = 0.0  # seconds this client spent waiting for a budget (tests, logs)
        self._allowance = 0
        self._lock = threading.Lock()
        self._sleep, self._now = sleep, now

    @property
    def limits(self) -> list[Limit]:
        return [limit for _key, limit in self.budgets]

    def acquire(self, units: int) -> None:
        units = max(1, min(units, self.chunk))
        with self._lock:
            while self._allowance < units:
                want = max(units, self.chunk)
                with self.ctx.write() as uow:
                    wait = uow.graph_budget.reserve(self.budgets, want, self._now())
                if wait <= 0:
                    self._allowance += want
                    break
                pause = min(wait, MAX_SLEEP)
                log.info("Graph budget of %s spent; waiting %.2f s", self.tenant_key, pause)
                self.waited += pause
                self._sleep(pause)
            self._allowance -= units

    def throttled(self, retry_after: float | None) -> None:
        """A 429 from this tenant: its budget is blocked for Retry-After (or 1 s) for every worker."""
        until = self._now() + timedelta(seconds=retry_after if retry_after is not None else 1.0)
        with self._lock:
            self._allowance = 0
        with self.ctx.write() as uow:
            uow.graph_budget.block(self.tenant_key, until)


def for_org(uow: UnitOfWork, ctx: AppContext, org_id: int, tenant_id: str, client_id: str) -> SharedBudget:
    """The budget hook for an organisation's refresh, sized by what its last refresh read (§10), read in
    the caller's unit of work."""
    return SharedBudget(ctx, tenant_id, client_id, users=uow.runs.last_people_read(org_id))
