"""Deterministic sample-tenant generator (same seed, same tenant) for the demo and the tests.

The tenant is realistic where sync code usually breaks: a deep manager tree with one root,
nested groups with device and contact members, guests with ``#EXT#`` user principal names,
disabled accounts, people without ``mail``, non-ASCII names, apostrophes and duplicate names, and the
HR properties of PRODUCT.md §12 (:mod:`entrasync.emulator.sample_extras`) with some left empty.
Which company, domains and extension owner app a tenant has comes from its
:class:`~entrasync.emulator.tenant_profiles.TenantProfile`.
"""

from __future__ import annotations

import functools
import random
import sys
import unicodedata
from datetime import UTC, datetime, timedelta

from entrasync.emulator.sample_data import CITIES, CJK, DEPARTMENTS, FIRST, GUEST_DOMAINS, LAST, USAGE
from entrasync.emulator.sample_extras import Extras
from entrasync.emulator.store import GLOBAL_ADMIN_ROLE, Device, Group, OrgContact, Tenant, User
from entrasync.emulator.tenant_profiles import SAMPLE_EXTENSIONS, TenantProfile, new_uuid, profile_for

__all__ = ["Tenant", "generate", "new_uuid"]

DOMAIN = "contoso.com"
INITIAL_DOMAIN = "contoso.onmicrosoft.com"
ROLE_DIRECTORY_READERS = "b79fbf4d-3ef9-4689-8143-76b194e85509"

FANOUT = 6

# Sample accounts shown on the emulator's sign-in page: (given, surname, role text, global admin?)
ADMIN_ACCOUNTS = (
    ("Adele", "Vance", "Global Administrator", True),
    ("Megan", "Bowen", "User", False),
)


@functools.cache
def _created_dates() -> list[str]:
    """2,000 creation timestamps from 2019-01-01, one shared string each for every tenant."""
    base = datetime(2019, 1, 1, 9, 0, tzinfo=UTC)
    return [sys.intern((base + timedelta(days=d)).strftime("%Y-%m-%dT%H:%M:%SZ")) for d in range(2000)]


_employee_ids: list[str] = []


def _employee_id(i: int) -> str:
    """``E000001``…, one shared string per number for every tenant."""
    while len(_employee_ids) <= i:
        _employee_ids.append(f"E{len(_employee_ids) + 1:06d}")
    return _employee_ids[i]


@functools.lru_cache(maxsize=4096)
def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum() or c in "'-")


def generate(users: int, seed: int, profile: TenantProfile | None = None) -> Tenant:
    """Build a tenant of exactly ``users`` users (at least 8), identical for identical arguments.

    ``profile`` defaults to tenant 0 of ``seed`` (Contoso); its ``gen_seed`` seeds the generator.
    """
    n = max(8, users)
    profile = profile or profile_for(seed, 0)
    rng = random.Random(profile.gen_seed)
    tenant = Tenant(new_uuid(rng), profile.domain, profile.initial_domain, profile.company)
    domain, initial_domain = profile.domain, profile.initial_domain
    intern = sys.intern
    n_dept = max(2, min(len(DEPARTMENTS), n // 12))
    departments = [intern(d) for d in DEPARTMENTS[:n_dept]]
    tenant.departments = list(departments)
    tenant.extension_app = {
        "id": profile.ext_app_object_id,
        "appId": profile.ext_app_id,
        "displayName": profile.ext_app_name,
    }
    ext_rng = random.Random(f"{profile.gen_seed}/extension-properties")
    for name, data_type in SAMPLE_EXTENSIONS:
        tenant.register_extension(name, data_type, prop_id=new_uuid(ext_rng))
    extras = Extras(profile, departments)
    dates = _created_dates()
    used_nicks: dict[str, int] = {}
    titles = {
        d: (intern(f"VP {d}"), intern(f"{d} Manager"), intern(f"Senior {d} Specialist"), intern(f"{d} Specialist"))
        for d in departments
    }

    def nickname(given: str, surname: str, i: int) -> str:
        nick = f"{_ascii(given)}.{_ascii(surname)}".strip(".")
        if len(nick) < 3 or not nick.replace(".", ""):
            nick = f"user{i}"
        count = used_nicks.get(nick, 0)
        used_nicks[nick] = count + 1
        return sys.intern(nick if count == 0 else f"{nick}{count + 1}")  # the same names recur across tenants

    # members of each department in creation order (index 0 is the department head)
    dept_members: dict[str, list[str]] = {d: [] for d in departments}
    admin_ids: list[str] = []

    for i in range(n):
        uid = new_uuid(rng)
        roll = rng.random()
        level = 0  # 0 executive, 1 manager, 2 senior, 3 specialist
        if i == 0:
            dept, given, surname, title = departments[0], "Margaret", "O'Connor", "Chief Executive Officer"
        elif i <= n_dept:
            dept = departments[i - 1]
            given, surname = rng.choice(FIRST), rng.choice(LAST)
            title = titles[dept][0]
        elif i <= n_dept + len(ADMIN_ACCOUNTS):
            given, surname, _role, _ga = ADMIN_ACCOUNTS[i - n_dept - 1]
            dept = "IT" if "IT" in departments else departments[-1]
            title, level = ("IT Administrator" if _ga else "IT Specialist"), 2
        else:
            dept = departments[rng.randrange(n_dept)]
            if i % 97 == 5:
                given, surname = CJK[(i // 97) % len(CJK)]
            elif i % 50 == 7:  # deliberate duplicate display names
                given, surname = "John", "Smith"
            else:
                given, surname = rng.choice(FIRST), rng.choice(LAST)
            level = 1 if rng.random() < 0.15 else 2 + (rng.random() < 0.6)
            title = titles[dept][level]
        city = CITIES[rng.randrange(len(CITIES))]
        country = USAGE[city]
        nick = nickname(given, surname, i)
        special = i > n_dept + len(ADMIN_ACCOUNTS)
        guest = special and roll < 0.03
        disabled = special and 0.03 <= roll < 0.05
        no_mail = special and 0.05 <= roll < 0.07
        display = intern(f"{given} {surname}" if not given[0] >= "\u3000" else f"{surname} {given}")
        gdom = GUEST_DOMAINS[i % len(GUEST_DOMAINS)]
        if guest:
            mail: str | None = f"{nick}@{gdom}"
            upn = f"{nick}_{gdom}#EXT#@{initial_domain}"
            display = intern(f"{display} (Guest)")
        else:
            upn = f"{nick}@{domain}"
            mail = None if no_mail else upn  # the same string object: one copy in memory
        office = intern(f"{city} {1 + i % 4}")
        more = extras.props(
            guest=guest, guest_domain=gdom, dept=dept, level=level, code=country, city=intern(city), office=office
        )
        user = User(
            uid,
            accountEnabled=not disabled,
            businessPhones=more["businessPhones"],
            city=more["city"],
            companyName=more["companyName"],
            country=more["country"],
            createdDateTime=dates[rng.randrange(len(dates))],
            department=None if guest else dept,
            displayName=display,
            employeeHireDate=more["employeeHireDate"],
            employeeId=None if guest else _employee_id(i),
            employeeType=more["employeeType"],
            givenName=given,
            jobTitle=None if guest else intern(title),
            mail=mail,
            mailNickname=nick,
            mobilePhone=more["mobilePhone"],
            officeLocation=None if guest else office,
            onPremisesExtensionAttributes=more.get("onPremisesExtensionAttributes"),
            preferredLanguage=more["preferredLanguage"],
            surname=surname,
            usageLocation=country,
            userPrincipalName=upn,
            userType="Guest" if guest else "Member",
        )
        if more.get("_ext"):
            user._ext = tenant.shared_extensions(more["_ext"])
        members = dept_members[dept]
        if i == 0:
            manager = None
        elif i <= n_dept:
            manager = tenant.order[0]
        else:
            manager = members[len(members) // FANOUT] if members else tenant.order[0]
        if i == 0:
            tenant.add_user_initial(user, None)
            dept_members[dept].append(uid)  # the CEO heads their own department's tree too
            continue
        tenant.add_user_initial(user, manager)
        if i <= n_dept and dept == departments[0]:
            dept_members[dept].insert(0, uid)
        else:
            members.append(uid)
        if n_dept < i <= n_dept + len(ADMIN_ACCOUNTS):
            admin_ids.append(uid)
            if ADMIN_ACCOUNTS[i - n_dept - 1][3]:
                user.wids = (GLOBAL_ADMIN_ROLE, ROLE_DIRECTORY_READERS)
            else:
                user.wids = (ROLE_DIRECTORY_READERS,)
    tenant.admins = admin_ids
    tenant.finish_initial()
    _make_groups(tenant, rng, departments, dept_members)
    return tenant


def _make_groups(
    tenant: Tenant, rng: random.Random, departments: list[str], dept_members: dict[str, list[str]]
) -> None:
    def group(name: str, desc: str, members: list[str]) -> Group:
        g = Group(
            id=new_uuid(rng), displayName=name, description=desc, mailNickname=_ascii(name.replace(" ", "")) or "group"
        )
        g.members = dict.fromkeys(members)
        tenant.groups[g.id] = g
        return g

    dept_groups = [group(f"{d} Team", f"Security group for {d}", dept_members[d]) for d in departments]
    everyone = [u for u in tenant.order if tenant.users[u].userType == "Member"]
    group("All Staff", "Every employee (members, not guests)", everyone)
    ceo = next(u.id for u in tenant.users.values() if u._manager is None)
    heads = [ceo, *sorted(u.id for u in tenant.reports_of(ceo))]
    leadership = group("Leadership", "The CEO and department heads", heads)
    group("All Departments", "Nested: every department team group", [g.id for g in dept_groups])
    tech = [g.id for g in dept_groups if g.displayName.split(" Team")[0] in ("Engineering", "IT", "Product")]
    group("Technology Division", "Nested groups plus a person", [*tech, tenant.admins[0]])
    for k in range(3):
        d = Device(
            id=new_uuid(rng),
            displayName=f"{tenant.display_name.upper()[:10].replace(' ', '')}-LAPTOP-{k + 1:03d}",
            deviceId=new_uuid(rng),
        )
        tenant.devices[d.id] = d
    for k, (name, mail) in enumerate(
        (("Fabrikam Support", "support@fabrikam.com"), ("Northwind Sales Desk", "sales@northwind.example"))
    ):
        c = OrgContact(id=new_uuid(rng), displayName=name, mail=mail)
        tenant.contacts[c.id] = c
        del k
    sample = rng.sample(tenant.order, min(5, len(tenant.order)))
    group(
        "Hardware Pilot",
        "Mixed members: users, a nested group, a device and an external contact",
        [*sample, leadership.id, next(iter(tenant.devices)), next(iter(tenant.contacts))],
    )
