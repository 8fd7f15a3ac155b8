"""People: the whole directory as planner records, pages for lists, one person, and hand edits' writes.

Rows leave as plain dicts (a person as the pages and the API show them: departments, roles and the
manager's name attached) or as :class:`~entrasync.domain.model.PersonRecord` for the planner.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.people_reads import PeopleReads, not_by_org, person_filters
from entrasync.adapters.db.people_records import PlannerRecords
from entrasync.domain import fields
from entrasync.domain.model import ADMIN_ROLES, Role

_TEXT_COLUMNS = fields.PEOPLE_COLUMNS  # the mapped columns of people, in FIELDS order (no departments)


def _person(row: Any) -> dict[str, Any]:
    m = dict(row._mapping)
    m.pop("password_hash", None)
    m.pop("email_lower", None)
    for name in fields.LIST_COLUMNS:
        if name in m:
            v = m[name]
            m[name] = list(v) if isinstance(v, list | tuple) else []
    return m


class PeopleRepo(PeopleReads, PlannerRecords):
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- lists and one person ----------------------------------------------------------------------

    def page(
        self,
        org_id: int,
        *,
        status: str | None,
        search: str | None,
        department: str | None,
        manager_id: int | None,
        page: int,
        per_page: int,
        facets: Mapping[str, str] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        p = t.people
        conds = person_filters(
            org_id, status=status, search=search, department=department, manager_id=manager_id, facets=facets
        )
        total = int(self.conn.execute(sa.select(sa.func.count()).select_from(p).where(*conds)).scalar_one())
        rows = self.conn.execute(
            sa.select(p).where(*conds).order_by(p.c.display_name, p.c.id).limit(per_page).offset((page - 1) * per_page)
        ).all()
        items = [_person(r) for r in rows]
        self._attach(items)
        return items, total

    def _attach(self, items: list[dict[str, Any]]) -> None:
        """Add departments, roles and manager name to a page of people (three small queries)."""
        ids = [i["id"] for i in items]
        if not ids:
            return
        depts: dict[int, list[str]] = defaultdict(list)
        for pid, name in self.conn.execute(
            sa.select(t.person_departments.c.person_id, t.departments.c.name)
            .join(t.departments, t.departments.c.id == t.person_departments.c.department_id)
            .where(t.person_departments.c.person_id.in_(ids))
        ):
            depts[pid].append(name)
        roles: dict[int, list[str]] = defaultdict(list)
        for pid, role in self.conn.execute(
            sa.select(t.person_roles.c.person_id, t.person_roles.c.role).where(t.person_roles.c.person_id.in_(ids))
        ):
            roles[pid].append(role)
        mids = {i["manager_id"] for i in items if i["manager_id"]}
        names = (
            dict(
                self.conn.execute(
                    sa.select(t.people.c.id, t.people.c.display_name).where(t.people.c.id.in_(mids))
                ).all()
            )
            if mids
            else {}
        )
        for i in items:
            i["departments"] = sorted(depts.get(i["id"], []))
            i["roles"] = sorted(roles.get(i["id"], []))
            i["manager_name"] = names.get(i["manager_id"]) if i["manager_id"] else None

    def get(self, org_id: int, person_id: int) -> dict[str, Any] | None:
        p = t.people
        row = self.conn.execute(sa.select(p).where(p.c.org_id == org_id, p.c.id == person_id)).first()
        if row is None:
            return None
        item = _person(row)
        self._attach([item])
        item["direct_reports"] = int(
            self.conn.execute(
                sa.select(sa.func.count()).select_from(p).where(p.c.manager_id == person_id, p.c.status != "archived")
            ).scalar_one()
        )
        return item

    def find_by_email(self, org_id: int, email: str) -> dict[str, Any] | None:
        p = t.people
        row = self.conn.execute(
            sa.select(p).where(p.c.org_id == org_id, p.c.email_lower == email.strip().lower())
        ).first()
        return _person(row) if row else None

    def find_by_login(self, org_id: int, names: Iterable[str]) -> dict[str, Any] | None:
        """The (not archived) person whose e-mail or user principal name is one of ``names``."""
        wanted = sorted({n.strip().lower() for n in names if n and n.strip()})
        if not wanted:
            return None
        p = t.people
        row = self.conn.execute(
            sa.select(p.c.id, p.c.email, p.c.display_name)
            .where(
                p.c.org_id == org_id,
                p.c.status != "archived",
                sa.or_(p.c.email_lower.in_(wanted), sa.func.lower(p.c.user_principal_name).in_(wanted)),
            )
            .order_by(p.c.id)
            .limit(1)
        ).first()
        return dict(row._mapping) if row else None

    def sign_in_row(self, org_id: int, email: str) -> tuple[int, str | None, str] | None:
        """(id, password hash, status) of the local account with this e-mail."""
        p = t.people
        row = self.conn.execute(
            sa.select(p.c.id, p.c.password_hash, p.c.status).where(
                p.c.org_id == org_id, p.c.email_lower == email.strip().lower()
            )
        ).first()
        return (int(row[0]), row[1], str(row[2])) if row else None

    def principal_row(self, org_id: int, person_id: int) -> dict[str, Any] | None:
        """What a role check needs of the signed-in person, re-read on every request."""
        p = t.people
        row = self.conn.execute(
            sa.select(p.c.email, p.c.display_name, p.c.status, p.c.time_zone, p.c.sessions_since).where(
                p.c.id == person_id, p.c.org_id == org_id
            )
        ).first()
        if row is None:
            return None
        return {**dict(row._mapping), "roles": self.roles(person_id)}

    def roles(self, person_id: int) -> set[str]:
        r = t.person_roles
        return set(self.conn.execute(sa.select(r.c.role).where(r.c.person_id == person_id)).scalars())

    def name(self, org_id: int, person_id: int) -> str | None:
        p = t.people
        row = self.conn.execute(
            sa.select(p.c.display_name, p.c.email).where(p.c.org_id == org_id, p.c.id == person_id)
        ).first()
        return (row[0] or row[1]) if row else None

    def manager_of(self, person_id: int) -> int | None:
        found = self.conn.execute(sa.select(t.people.c.manager_id).where(t.people.c.id == person_id)).scalar()
        return None if found is None else int(found)

    def changed_since(self, org_id: int, person_ids: Sequence[int], version: int) -> list[str]:
        """Names (else e-mails) of those of ``person_ids`` changed after directory ``version``."""
        p = t.people
        out: list[str] = []
        ids = sorted(set(person_ids))
        for i in range(0, len(ids), 20000):
            out += [
                str(name or email)
                for name, email in self.conn.execute(
                    sa.select(p.c.display_name, p.c.email).where(
                        p.c.org_id == org_id, p.c.id.in_(sa.bindparam("ids", expanding=True)), p.c.version > version
                    ),
                    {"ids": ids[i : i + 20000]},
                )
            ]
        return sorted(out)

    def emails_taken(self, org_id: int, emails: Sequence[str]) -> list[str]:
        """Which of ``emails`` someone in the organisation holds (compared case-insensitively)."""
        p = t.people
        keys = sorted({e.lower() for e in emails})
        out: list[str] = []
        for i in range(0, len(keys), 20000):
            out += list(
                self.conn.execute(
                    sa.select(p.c.email).where(
                        p.c.org_id == org_id, p.c.email_lower.in_(sa.bindparam("e", expanding=True))
                    ),
                    {"e": keys[i : i + 20000]},
                ).scalars()
            )
        return sorted(out)

    def any_synced(self, org_id: int) -> bool:
        """Whether anyone in the organisation came from Entra (whatever their status)."""
        p = t.people
        return (
            self.conn.execute(sa.select(p.c.id).where(p.c.org_id == org_id, p.c.source == "entra").limit(1)).first()
            is not None
        )

    def other_admins(self, org_id: int, person_id: int) -> int:
        """Active or paused people other than ``person_id`` who hold an admin role in the organisation."""
        p, r = t.people, t.person_roles
        return int(
            self.conn.execute(
                sa.select(sa.func.count(sa.distinct(p.c.id)))
                .select_from(p.join(r, r.c.person_id == p.c.id))
                .where(p.c.org_id == org_id, p.c.id != person_id, p.c.status != "archived", r.c.role.in_(ADMIN_ROLES))
            ).scalar_one()
        )

    def is_super_admin(self, org_id: int, person_id: int) -> bool:
        p, r = t.people, t.person_roles
        return bool(
            self.conn.execute(
                sa.select(sa.func.count())
                .select_from(r.join(p, p.c.id == r.c.person_id))
                .where(
                    p.c.org_id == org_id,
                    p.c.id == person_id,
                    p.c.status != "archived",
                    r.c.role == Role.SUPER_ADMIN.value,
                )
            ).scalar_one()
        )

    def admin_ids(self, org_id: int) -> list[int]:
        """Everyone not archived who holds an admin role (webhook notices go to all of them)."""
        p, r = t.people, t.person_roles
        q = (
            sa.select(p.c.id)
            .select_from(p.join(r, r.c.person_id == p.c.id))
            .where(p.c.org_id == org_id, p.c.status != "archived", r.c.role.in_(ADMIN_ROLES))
            .distinct()
        )
        return sorted(int(i) for i in self.conn.execute(q).scalars())

    def super_admins(self, org_id: int) -> list[dict[str, Any]]:
        """By name. The few role rows lead (sorted here; see ``people_reads.not_by_org``): ordering in
        SQL walked every person of the organisation by name."""
        p, r = t.people, t.person_roles
        rows = self.conn.execute(
            sa.select(p.c.id, p.c.display_name, p.c.email).where(
                p.c.id.in_(sa.select(r.c.person_id).where(r.c.role == Role.SUPER_ADMIN.value)),
                not_by_org(p) == org_id,
                p.c.status != "archived",
            )
        )
        return sorted((dict(x._mapping) for x in rows), key=lambda d: (d["display_name"] or "", d["id"]))

    def managers(self, org_id: int, limit: int = 300) -> list[dict[str, Any]]:
        """People who have direct reports (the team filter), by name."""
        p = t.people
        child = sa.alias(p)
        has_reports = sa.exists().where(child.c.manager_id == p.c.id, child.c.status != "archived")
        rows = self.conn.execute(
            sa.select(p.c.id, p.c.display_name, p.c.email)
            .where(p.c.org_id == org_id, p.c.status != "archived", has_reports)
            .order_by(p.c.display_name, p.c.id)
            .limit(limit)
        )
        return [dict(r._mapping) for r in rows]

    def departments(self, org_id: int, limit: int = 1000) -> list[str]:
        d = t.departments
        return list(
            self.conn.execute(sa.select(d.c.name).where(d.c.org_id == org_id).order_by(d.c.name).limit(limit)).scalars()
        )

    def team(self, org_id: int, root_id: int | None, limit: int = 500) -> list[dict[str, Any]]:
        """Direct reports of ``root_id`` (or the top of the organisation), with their report counts."""
        p = t.people
        child = sa.alias(p)
        counts = (
            sa.select(sa.func.count())
            .select_from(child)
            .where(child.c.manager_id == p.c.id, child.c.status != "archived")
            .scalar_subquery()
        )
        cond = p.c.manager_id.is_(None) if root_id is None else p.c.manager_id == root_id
        rows = self.conn.execute(
            sa.select(p.c.id, p.c.display_name, p.c.email, p.c.job_title, counts.label("reports"))
            .where(p.c.org_id == org_id, p.c.status != "archived", cond)
            .order_by(counts.desc(), p.c.display_name)
            .limit(limit)
        )
        return [dict(r._mapping) for r in rows]

    # -- hand edits --------------------------------------------------------------------------------

    def insert(self, org_id: int, values: dict[str, Any]) -> int:
        email = values["email"]
        pk = self.conn.execute(
            sa.insert(t.people).values(org_id=org_id, email_lower=email.lower(), **values)
        ).inserted_primary_key
        assert pk is not None
        return int(pk[0])

    def update(self, person_id: int, values: dict[str, Any]) -> None:
        if "email" in values:
            values = {**values, "email_lower": values["email"].lower()}
        self.conn.execute(sa.update(t.people).where(t.people.c.id == person_id).values(**values))

    def set_password(self, person_id: int, password_hash: str, *, end_sessions_at: Any = None) -> None:
        values: dict[str, Any] = {"password_hash": password_hash}
        if end_sessions_at is not None:
            values["sessions_since"] = end_sessions_at
        self.conn.execute(sa.update(t.people).where(t.people.c.id == person_id).values(**values))

    def has_password(self, person_id: int) -> bool:
        p = t.people
        return bool(self.conn.execute(sa.select(p.c.password_hash.is_not(None)).where(p.c.id == person_id)).scalar())

    def set_roles(self, person_id: int, roles: Iterable[str]) -> None:
        r = t.person_roles
        self.conn.execute(sa.delete(r).where(r.c.person_id == person_id))
        rows = [{"person_id": person_id, "role": role} for role in sorted(set(roles))]
        if rows:
            self.conn.execute(sa.insert(r), rows)

    def set_departments(self, org_id: int, person_id: int, names: Sequence[str]) -> None:
        pd = t.person_departments
        self.conn.execute(sa.delete(pd).where(pd.c.person_id == person_id))
        if names:
            ids = self.department_ids(org_id, set(names))
            self.conn.execute(sa.insert(pd), [{"person_id": person_id, "department_id": ids[n]} for n in names])

    def department_ids(self, org_id: int, names: set[str]) -> dict[str, int]:
        """Ids for department names, creating the missing ones."""
        d = t.departments
        if not names:
            return {}
        query = sa.select(d.c.id, d.c.name).where(d.c.org_id == org_id, d.c.name.in_(sa.bindparam("n", expanding=True)))
        have = {n: i for i, n in self.conn.execute(query, {"n": sorted(names)})}
        missing = sorted(n for n in names if n not in have)
        if missing:
            self.conn.execute(sa.insert(d), [{"org_id": org_id, "name": n} for n in missing])
            have.update({n: i for i, n in self.conn.execute(query, {"n": missing})})
        return have
