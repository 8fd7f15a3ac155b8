"""Deterministic sample-tenant generator (same seed, same tenant) for the demo and the tests.

The tenant is realistic where sync code usually breaks: a deep manager tree with one root,
nested groups with device and contact members, guests with ``#EXT#`` user principal names,
disabled accounts, people without ``mail``, non-ASCII names, apostrophes and duplicate names.
"""

from __future__ import annotations

import random
import sys
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta

from entrasync.emulator.store import GLOBAL_ADMIN_ROLE, Device, Group, OrgContact, Tenant, User

__all__ = ["Tenant", "generate", "new_uuid"]

DOMAIN = "contoso.com"
INITIAL_DOMAIN = "contoso.onmicrosoft.com"

DEPARTMENTS = (
    "Engineering",
    "Sales",
    "Marketing",
    "Finance",
    "Human Resources",
    "IT",
    "Legal",
    "Operations",
    "Customer Success",
    "Product",
    "Research",
    "Procurement",
    "Facilities",
    "Security",
    "Support",
    "Data & Analytics",
)
FIRST = (
    "Adele",
    "Alex",
    "Zoë",
    "José",
    "Łukasz",
    "Amélie",
    "Søren",
    "Chloé",
    "Björn",
    "Renée",
    "Mohammed",
    "Priya",
    "Wei",
    "Yuki",
    "Olga",
    "Jürgen",
    "Siobhán",
    "Seán",
    "Ana",
    "John",
    "Mary",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "James",
    "Susan",
    "Ngozi",
    "Kwame",
    "Ines",
    "Mateo",
    "Aarav",
    "Fatima",
    "Hiroshi",
    "Emma",
    "Noah",
    "Olivia",
    "Liam",
    "Ava",
    "Lucas",
    "Mia",
    "François",
    "Dvořák",
    "Ewa",
    "Nuño",
    "Ólafur",
    "Gráinne",
)
LAST = (
    "Smith",
    "Johnson",
    "O'Brien",
    "D'Angelo",
    "García",
    "Müller",
    "Kowalski",
    "Nowak",
    "Nguyen",
    "Kim",
    "Patel",
    "Okafor",
    "Rossi",
    "Dubois",
    "Søndergaard",
    "Håkansson",
    "Ó Súilleabháin",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Martin",
    "Jackson",
    "White",
    "Harris",
    "López",
    "González",
    "Fernández",
    "Schröder",
    "Weiß",
    "Yılmaz",
    "Novák",
    "Horváth",
    "Ivanova",
    "Petrović",
    "MacDonald",
    "O'Neill",
    "Van der Berg",
    "Lefèvre",
    "Zieliński",
    "Achterberg",
    "Kapoor",
    "Chen",
    "Wang",
    "Singh",
)
CJK = (("太郎", "田中"), ("花子", "山田"), ("伟", "王"), ("秀英", "李"), ("民準", "김"))
CITIES = ("Seattle", "London", "Paris", "Berlin", "Tokyo", "São Paulo", "Sydney", "Kraków", "Dublin")
USAGE = {
    "Seattle": "US",
    "London": "GB",
    "Paris": "FR",
    "Berlin": "DE",
    "Tokyo": "JP",
    "São Paulo": "BR",
    "Sydney": "AU",
    "Kraków": "PL",
    "Dublin": "IE",
}
LANGS = {
    "US": "en-US",
    "GB": "en-GB",
    "FR": "fr-FR",
    "DE": "de-DE",
    "JP": "ja-JP",
    "BR": "pt-BR",
    "AU": "en-AU",
    "PL": "pl-PL",
    "IE": "en-IE",
}
GUEST_DOMAINS = ("fabrikam.com", "northwind.example", "adatum.com", "litware.example")
FANOUT = 6

# Sample accounts shown on the emulator's sign-in page: (given, surname, role text, global admin?)
ADMIN_ACCOUNTS = (
    ("Adele", "Vance", "Global Administrator", True),
    ("Megan", "Bowen", "User", False),
)


def new_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum() or c in "'-")


def generate(users: int, seed: int) -> Tenant:
    """Build a tenant of exactly ``users`` users (at least 8), identical for identical arguments."""
    n = max(8, users)
    rng = random.Random(seed)
    tenant = Tenant(new_uuid(rng), DOMAIN, INITIAL_DOMAIN)
    intern = sys.intern
    n_dept = max(2, min(len(DEPARTMENTS), n // 12))
    departments = [intern(d) for d in DEPARTMENTS[:n_dept]]
    tenant.departments = list(departments)
    base = datetime(2019, 1, 1, 9, 0, tzinfo=UTC)
    dates = [intern((base + timedelta(days=d)).strftime("%Y-%m-%dT%H:%M:%SZ")) for d in range(2000)]
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
        return nick if count == 0 else f"{nick}{count + 1}"

    # members of each department in creation order (index 0 is the department head)
    dept_members: dict[str, list[str]] = {d: [] for d in departments}
    admin_ids: list[str] = []

    for i in range(n):
        uid = new_uuid(rng)
        roll = rng.random()
        if i == 0:
            dept, given, surname, title = departments[0], "Margaret", "O'Connor", "Chief Executive Officer"
        elif i <= n_dept:
            dept = departments[i - 1]
            given, surname = rng.choice(FIRST), rng.choice(LAST)
            title = titles[dept][0]
        elif i <= n_dept + len(ADMIN_ACCOUNTS):
            given, surname, _role, _ga = ADMIN_ACCOUNTS[i - n_dept - 1]
            dept = "IT" if "IT" in departments else departments[-1]
            title = "IT Administrator" if _ga else "IT Specialist"
        else:
            dept = departments[rng.randrange(n_dept)]
            if i % 97 == 5:
                given, surname = CJK[(i // 97) % len(CJK)]
            elif i % 50 == 7:  # deliberate duplicate display names
                given, surname = "John", "Smith"
            else:
                given, surname = rng.choice(FIRST), rng.choice(LAST)
            title = titles[dept][1] if rng.random() < 0.15 else titles[dept][2 + (rng.random() < 0.6)]
        city = CITIES[rng.randrange(len(CITIES))]
        country = USAGE[city]
        nick = nickname(given, surname, i)
        special = i > n_dept + len(ADMIN_ACCOUNTS)
        guest = special and roll < 0.03
        disabled = special and 0.03 <= roll < 0.05
        no_mail = special and 0.05 <= roll < 0.07
        display = f"{given} {surname}" if not given[0] >= "\u3000" else f"{surname} {given}"
        if guest:
            gdom = GUEST_DOMAINS[i % len(GUEST_DOMAINS)]
            mail: str | None = f"{nick}@{gdom}"
            upn = f"{nick}_{gdom}#EXT#@{INITIAL_DOMAIN}"
            display = f"{display} (Guest)"
        else:
            mail = None if no_mail else f"{nick}@{DOMAIN}"
            upn = f"{nick}@{DOMAIN}"
        user = User(
            uid,
            accountEnabled=not disabled,
            businessPhones=(f"+1 425 555 {i % 10000:04d}",) if i % 2 == 0 else (),
            city=intern(city),
            companyName=None if guest else "Contoso",
            country=intern(country),
            createdDateTime=dates[rng.randrange(len(dates))],
            department=None if guest else dept,
            displayName=display,
            employeeId=None if guest else f"E{i + 1:06d}",
            givenName=given,
            jobTitle=None if guest else intern(title),
            mail=mail,
            mailNickname=nick,
            mobilePhone=f"+1 206 555 {(i * 7) % 10000:04d}" if i % 3 == 0 else None,
            officeLocation=None if guest else intern(f"{city} {1 + i % 4}"),
            preferredLanguage=LANGS[country],
            surname=surname,
            usageLocation=country,
            userPrincipalName=upn,
            userType="Guest" if guest else "Member",
        )
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
                user.wids = (GLOBAL_ADMIN_ROLE, "b79fbf4d-3ef9-4689-8143-76b194e85509")
            else:
                user.wids = ("b79fbf4d-3ef9-4689-8143-76b194e85509",)
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
    heads = [ceo, *sorted(tenant.reports.get(ceo, set()))]
    leadership = group("Leadership", "The CEO and department heads", heads)
    group("All Departments", "Nested: every department team group", [g.id for g in dept_groups])
    tech = [g.id for g in dept_groups if g.displayName.split(" Team")[0] in ("Engineering", "IT", "Product")]
    group("Technology Division", "Nested groups plus a person", [*tech, tenant.admins[0]])
    for k in range(3):
        d = Device(id=new_uuid(rng), displayName=f"CONTOSO-LAPTOP-{k + 1:03d}", deviceId=new_uuid(rng))
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
