"""Matching Entra users with directory people (spec §4.3), the first phases of the planner.

Each phase builds a frozen index once: who is in scope and which e-mails are claimed twice
(:func:`scope_users`), the directory (:func:`index_directory`), the people a duplicated e-mail touches
(:func:`duplicates`), and the match of every in-scope user (:func:`match`): by Entra id, else an
unlinked (or dead-linked) person by e-mail. Decisions read only the indexes, never an earlier
decision, so the outcome does not depend on the order of the users.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from entrasync.domain import fields
from entrasync.domain.model import Conflict, EntraSnapshot, EntraUser, PersonRecord, Reason, ScopeSettings
from entrasync.domain.scope import scope_predicate

NEW_PERSON: Final = -1  # "the person this plan creates": never equal to a stored manager id
KEEP_CURRENT: Final = -2  # "whoever manages them now": Entra's manager is a joiner the admin rejected


def email_key(user: EntraUser) -> str:
    return str(user.values[fields.EMAIL]).casefold()


# -- Entra ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scope:
    users: Mapping[str, EntraUser]  # in scope, by Entra id
    by_email: Mapping[str, str]  # e-mail key -> the first in-scope user claiming it
    duplicates: Mapping[str, list[str]]  # e-mail keys claimed by several in-scope users -> their ids


def scope_users(snapshot: EntraSnapshot, settings: ScopeSettings) -> Scope:
    group_ids = snapshot.group_member_ids
    if settings.group_filter and group_ids is None:
        raise ValueError("the group filter is on but the snapshot has no group membership")
    test = scope_predicate(settings, group_ids)
    scoped: dict[str, EntraUser] = {}
    by_email: dict[str, str] = {}
    dups: dict[str, list[str]] = {}
    for user in snapshot.users.values():
        if not test(user):
            continue
        uid = user.id
        scoped[uid] = user
        key = email_key(user)
        prev = by_email.setdefault(key, uid)
        if prev != uid:
            dups.setdefault(key, [prev]).append(uid)
    for ids in dups.values():
        ids.sort()
    return Scope(scoped, by_email, dups)


# -- the directory -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Directory:
    by_id: Mapping[int, PersonRecord]
    by_entra: Mapping[str, PersonRecord]  # duplicates (bad data) resolve to the lowest person id
    by_email: Mapping[str, PersonRecord]
    email_keys: Mapping[int, str]


def index_directory(people: Sequence[PersonRecord]) -> Directory:
    by_id: dict[int, PersonRecord] = {}
    by_entra: dict[str, PersonRecord] = {}
    by_email: dict[str, PersonRecord] = {}
    email_keys: dict[int, str] = {}
    for p in people:
        pid = p.id
        by_id[pid] = p
        key = str(p.values[fields.EMAIL]).casefold()
        email_keys[pid] = key
        other = by_email.get(key)
        if other is None or other.id > pid:
            by_email[key] = p
        if p.entra_id is not None:
            other = by_entra.get(p.entra_id)
            if other is None or other.id > pid:
                by_entra[p.entra_id] = p
    return Directory(by_id, by_entra, by_email, email_keys)


# -- e-mails claimed twice -----------------------------------------------------------------


def duplicates(scope: Scope, d: Directory) -> tuple[set[int], set[str], list[Conflict]]:
    """People a duplicated e-mail touches (left exactly as they are), the users claiming it, the conflicts."""
    protected: set[int] = set()
    claimants: set[str] = set()
    conflicts: list[Conflict] = []
    for key, ids in scope.duplicates.items():
        claimants.update(ids)
        holder = d.by_email.get(key)
        if holder is not None:
            protected.add(holder.id)
        for uid in ids:
            linked = d.by_entra.get(uid)
            if linked is not None:
                protected.add(linked.id)
        conflicts.append(
            Conflict(
                email=scope.users[ids[0]].email,
                entra_ids=tuple(ids),
                person_id=holder.id if holder is not None else None,
            )
        )
    return protected, claimants, conflicts


# -- matching (§4.3) -----------------------------------------------------------------------


@dataclass(slots=True)
class Matches:
    matched: dict[str, tuple[PersonRecord, Reason | None]]  # Entra id -> (person, link reason or None)
    joiners: list[EntraUser]
    handled: set[int]  # people whose fate the Entra pass decided (changed, matched, untouched)


def _employee_ids(scope: Scope, d: Directory) -> tuple[dict[str, PersonRecord], set[str]]:
    """For "first link by employee id": people by employee id, and the ids claimed once by an in-scope
    user and held once in the directory (a duplicate on either side falls back to the e-mail)."""
    at = fields.INDEX["employee_id"]
    users: dict[str, int] = {}
    for user in scope.users.values():
        eid = user.values[at]
        if isinstance(eid, str) and eid.strip():
            k = eid.strip().casefold()
            users[k] = users.get(k, 0) + 1
    people: dict[str, PersonRecord] = {}
    twice: set[str] = set()
    for p in d.by_id.values():
        eid = p.values[at]
        if isinstance(eid, str) and eid.strip():
            k = eid.strip().casefold()
            if k in people:
                twice.add(k)
            people[k] = p
    unique = {k for k, n in users.items() if n == 1 and k in people and k not in twice}
    return people, unique


def match(
    snapshot: EntraSnapshot,
    scope: Scope,
    d: Directory,
    protected: set[int],
    claimants: set[str],
    conflicts: list[Conflict],
    link_by: str = "email",
) -> Matches:
    """By Entra id, else an unlinked (or dead-linked) person by e-mail (or, with ``link_by`` employee
    id, by a unique employee id first). Each decision reads only the indexes, never an earlier
    decision, so the outcome does not depend on the order of the users."""
    out = Matches({}, [], set(protected))
    by_employee: dict[str, PersonRecord] = {}
    unique_ids: set[str] = set()
    at = fields.INDEX["employee_id"]
    if link_by == "employee_id":
        by_employee, unique_ids = _employee_ids(scope, d)
    employee_claimed = {
        p.id for k in unique_ids if (p := by_employee[k]).entra_id is None or not snapshot.exists(p.entra_id)
    }
    for uid, user in scope.users.items():
        if uid in claimants:
            continue
        key = email_key(user)
        found = d.by_entra.get(uid)
        link: Reason | None = None
        if found is not None:
            if found.id in protected:  # touched by a duplicated e-mail: left as is
                continue
        else:
            if unique_ids:
                eid = user.values[at]
                k = eid.strip().casefold() if isinstance(eid, str) else ""
                if k in unique_ids:
                    found = by_employee[k]
                    if found.id in protected or (found.entra_id is not None and snapshot.exists(found.entra_id)):
                        found = None  # linked to a live user already: the e-mail decides
            if found is None:
                found = d.by_email.get(key)
                if found is not None and found.id in employee_claimed and found.id not in protected:
                    mine = user.values[at]
                    if not isinstance(mine, str) or mine.strip().casefold() not in unique_ids:
                        # Another user links to this person by employee id: this one's e-mail is taken.
                        conflicts.append(Conflict(email=user.email, entra_ids=(uid,), person_id=found.id))
                        continue
            if found is None:
                out.joiners.append(user)
                continue
            if found.id in protected:
                conflicts.append(Conflict(email=user.email, entra_ids=(uid,), person_id=found.id))
                continue
            linked_id = found.entra_id
            if linked_id is None:
                link = Reason.FIRST_LINK
            elif not snapshot.exists(linked_id):
                # Its account is deleted (for good, or only soft-deleted and restorable): a re-hire under
                # a new account takes the person and their history over, as for a hard delete.
                link = Reason.RELINK
            else:
                conflicts.append(Conflict(email=user.email, entra_ids=(uid,), person_id=found.id))
                continue
        if key != d.email_keys[found.id]:
            holder = d.by_email.get(key)
            if holder is not None and holder.id != found.id:
                conflicts.append(Conflict(email=user.email, entra_ids=(uid,), person_id=holder.id))
                out.handled.add(found.id)
                continue
        out.matched[uid] = (found, link)
        out.handled.add(found.id)
    return out


Resolver = Callable[[EntraUser], tuple[str | None, int | None]]


def manager_resolver(scope: Scope, d: Directory, m: Matches, rejected: frozenset[str] = frozenset()) -> Resolver:
    """``rejected``: joiners whose create is overridden. They will not exist, so a joiner they manage
    gets no manager and a person in the directory keeps their current one (:data:`KEEP_CURRENT`):
    proposing a move to nobody would be a change the admin never saw, after they rejected everything."""
    joiner_ids = {u.id for u in m.joiners} - rejected
    scoped, matched, by_entra = scope.users, m.matched, d.by_entra

    def resolve(user: EntraUser) -> tuple[str | None, int | None]:
        """Entra's manager -> (effective manager Entra id, the person who is/will be that manager)."""
        mid = user.manager_id
        if mid is None or mid not in scoped or mid == user.id:
            return None, None  # outside the scope (disabled, deleted, filtered out): no manager
        hit = matched.get(mid)
        if hit is not None:
            return mid, hit[0].id
        if mid in joiner_ids:
            return mid, NEW_PERSON
        if mid in rejected:
            return mid, KEEP_CURRENT
        linked = by_entra.get(mid)  # in a conflict: keeps its current person
        if linked is not None:
            return mid, linked.id
        return None, None

    return resolve


def effective(user: EntraUser, manager_entra_id: str | None) -> EntraUser:
    if manager_entra_id == user.manager_id:
        return user
    return EntraUser(user.id, user.values, user.mail, user.account_enabled, user.user_type, manager_entra_id)
