"""The sample tenant generator: deterministic, realistic, and compact."""

from __future__ import annotations

import time
import tracemalloc

from entrasync.emulator.store import GLOBAL_ADMIN_ROLE
from entrasync.emulator.tenant import generate


def test_same_seed_same_tenant_and_different_seed_differs() -> None:
    a, b, c = generate(500, 3), generate(500, 3), generate(500, 4)
    assert a.tenant_id == b.tenant_id and list(a.users) == list(b.users)
    assert [u.displayName for u in a.users.values()] == [u.displayName for u in b.users.values()]
    assert a.tenant_id != c.tenant_id


def test_shape_of_the_sample_tenant() -> None:
    t = generate(2000, 1)
    users = list(t.users.values())
    assert len(users) == 2000
    roots = [u for u in users if u._manager is None]
    assert len(roots) == 1 and roots[0].jobTitle == "Chief Executive Officer"

    def depth(uid: str) -> int:
        d = 0
        while (m := t.users[uid]._manager) is not None:
            uid, d = m, d + 1
        return d

    assert max(depth(u.id) for u in users) >= 3  # at least 4 levels: CEO + 3 below
    assert 10 <= len(t.departments) <= 20
    guests = [u for u in users if u.userType == "Guest"]
    assert 0.015 < len(guests) / len(users) < 0.05
    assert all("#EXT#@contoso.onmicrosoft.com" in g.userPrincipalName for g in guests)
    assert 0.01 < sum(not u.accountEnabled for u in users) / len(users) < 0.04
    assert 0.01 < sum(u.mail is None for u in users) / len(users) < 0.04
    names = [u.displayName or "" for u in users]
    assert any(any(ord(ch) > 127 for ch in n) for n in names)
    assert any("'" in n for n in names)
    assert any("田中" in n for n in names)
    assert len(set(names)) < len(names)  # duplicate display names exist
    admins = [t.users[a] for a in t.admins]
    assert any(GLOBAL_ADMIN_ROLE in a.wids for a in admins)
    assert any(GLOBAL_ADMIN_ROLE not in a.wids for a in admins)
    kinds = {t.object_type(m) for g in t.groups.values() for m in g.members}
    assert kinds == {"user", "group", "device", "orgContact"}  # nested groups, a device, a contact
    assert any(g.displayName == "All Staff" for g in t.groups.values())
    assert sum(g.displayName.endswith(" Team") for g in t.groups.values()) == len(t.departments)


def test_memory_per_user_is_modest_and_generation_fast() -> None:
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    t = generate(20_000, 1)
    elapsed = time.perf_counter() - started
    per_user = (tracemalloc.get_traced_memory()[0] - before) / len(t.users)
    tracemalloc.stop()
    print(f"bytes per user: {per_user:.0f}; 20k generated in {elapsed:.2f}s (traced)")
    assert per_user < 2000


def test_new_properties_are_deterministic_and_older_ones_unchanged_by_them() -> None:
    from entrasync.emulator.objects import ALL_USER_PROPERTIES

    def rows(seed: int) -> list[tuple[object, ...]]:
        t = generate(400, seed)
        return [(*(u.get(p) for p in ALL_USER_PROPERTIES), u.extensions(), u._manager) for u in t.users.values()]

    assert rows(3) == rows(3)
    t = generate(400, 3)
    assert [p["name"] for p in t.extension_properties] == [
        f"extension_{t.extension_app['appId'].replace('-', '')}_{n}" for n in ("costCenter", "employeeGrade")
    ]
    # Shared values: one dict per distinct onPremisesExtensionAttributes / extension set, not one per user.
    assert len({id(u.onPremisesExtensionAttributes) for u in t.users.values()}) < 100
    assert len({id(u._ext) for u in t.users.values()}) < 200


def test_tenant_profiles_are_distinct_and_known_without_generating() -> None:
    from entrasync.emulator.tenant_profiles import profile_for, tenant_sizes

    profiles = [profile_for(1, i) for i in range(1000)]
    assert profiles[0].domain == "contoso.com" and profiles[0].company == "Contoso"
    assert len({p.tenant_id for p in profiles}) == 1000 and len({p.domain for p in profiles}) == 1000
    assert len({p.ext_app_id for p in profiles}) == 1000
    assert profile_for(1, 17) == profiles[17]
    assert generate(50, 1, profiles[17]).tenant_id == profiles[17].tenant_id
    assert generate(50, 1).tenant_id == profiles[0].tenant_id  # tenant 0 is the single-tenant emulator's
    sizes = tenant_sizes(1000, 1, 200, 100, 2000)
    assert sizes == tenant_sizes(1000, 1, 200, 100, 2000) and min(sizes) >= 100 and max(sizes) <= 2000
    assert tenant_sizes(1, 1, 200, 100, 2000) == [200]
