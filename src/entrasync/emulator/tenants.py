"""The tenants one emulator serves (PRODUCT.md §10, a SaaS's view of Entra): each with its own
directory, generated on first use, and its own consent, permissions, delta knobs, faults, counters
and throttle. One multi-tenant app registration is consented in each of them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from entrasync.emulator.faults import FaultRegistry
from entrasync.emulator.store import Tenant
from entrasync.emulator.tenant import generate
from entrasync.emulator.tenant_profiles import TenantProfile, profile_for
from entrasync.emulator.throttle import Throttle

DEFAULT_APP_ROLES = ("User.Read.All", "GroupMember.Read.All")


class TenantState:
    """One tenant as the emulator serves it. ``store`` generates the directory on first access."""

    def __init__(self, profile: TenantProfile, users: int, seed: int) -> None:
        self.profile = profile
        self.tenant_id = profile.tenant_id
        self.size = users
        self.seed = seed
        self.consented = True  # the app's admin consent in this tenant (client credentials need it)
        self.app_roles: list[str] = list(DEFAULT_APP_ROLES)  # application permissions granted here
        self.delta_expiry_mode = "400"  # what an expired delta token produces: "400" or "410"
        self.delta_page_size = 200
        self.faults = FaultRegistry()
        self.counters: Counter[str] = Counter()
        self.throttle = Throttle()
        self.generate_seconds: float | None = None
        self._store: Tenant | None = None
        self._lock = threading.Lock()

    @property
    def generated(self) -> bool:
        return self._store is not None

    @property
    def store(self) -> Tenant:
        store = self._store
        if store is None:
            with self._lock:
                store = self._store
                if store is None:
                    started = time.perf_counter()
                    store = generate(self.size, self.seed, self.profile)
                    self.generate_seconds = time.perf_counter() - started
                    self._store = store
        return store

    def aliases(self) -> tuple[str, ...]:
        p = self.profile
        return (p.tenant_id.lower(), p.domain.lower(), p.initial_domain.lower())

    def describe(self, admin_url: str, default: bool) -> dict[str, Any]:
        """What the tenants listing and the tenants file say about this tenant (never generates it)."""
        p = self.profile
        return {
            "tenantId": p.tenant_id,
            "index": p.index,
            "displayName": p.company,
            "domain": p.domain,
            "initialDomain": p.initial_domain,
            "users": len(self._store.users) if self._store is not None else self.size,
            "default": default,
            "generated": self.generated,
            "consented": self.consented,
            "extensionProperties": list(p.extension_names),
            "adminUrl": f"{admin_url}/tenants/{p.tenant_id}",
        }


class TenantRegistry:
    def __init__(self, seed: int, sizes: list[int]) -> None:
        if not sizes:
            raise ValueError("at least one tenant")
        self.seed = seed
        self.states = [TenantState(profile_for(seed, i), n, seed) for i, n in enumerate(sizes)]
        self._by_id = {ts.tenant_id.lower(): ts for ts in self.states}
        self._by_alias = {alias: ts for ts in self.states for alias in ts.aliases()}

    @property
    def default(self) -> TenantState:
        return self.states[0]

    @property
    def multi(self) -> bool:
        return len(self.states) > 1

    def get(self, tenant_id: str) -> TenantState | None:
        """By tenant id (the ``tid`` claim), case-insensitive."""
        return self._by_id.get(tenant_id.lower())

    def resolve(self, alias: str) -> TenantState | None:
        """By tenant id or one of its domains, as the identity platform accepts in its URLs."""
        return self._by_alias.get(alias.lower())

    def __iter__(self) -> Iterator[TenantState]:
        return iter(self.states)

    def __len__(self) -> int:
        return len(self.states)
