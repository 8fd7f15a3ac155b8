"""The sync planner (spec §4.2-§4.6): what Entra holds vs the directory -> a :class:`Plan`.

A pure function: no I/O, no clock, no randomness, and the result does not depend on the order of
its inputs, so the same refresh always yields the same plan and the same fingerprints (overrides
rely on that). It is built for 100k people x 100k users: every lookup is a dict built once, and an
unchanged person costs one tuple comparison (``PersonRecord.values == EntraUser.values``).

:func:`plan` runs named phases over frozen indexes: :func:`_scope` (who is in scope, which e-mails
are claimed twice), :func:`_index` (the directory), :func:`_duplicates`, :func:`_match`, then the
changes of joiners, matched people and leavers, the overrides and the safety guard.

Rules chosen where the spec leaves room (see the tests for each):

* E-mails compare case-insensitively (``str.casefold``) for matching and collisions; the stored
  value mirrors Entra's spelling exactly, so a case-only change is an ``email`` diff.
* A duplicate e-mail is one claimed by two or more *in-scope* users. Those users, every person
  linked to them and the person holding that e-mail are left untouched, and one :class:`Conflict`
  is reported. A user whose e-mail would collide with another directory person's *current* e-mail
  is skipped and reported as a :class:`Conflict` with that person's id (a swap of two e-mails
  therefore waits for an admin; no apply ever breaks the unique e-mail).
* Linking (first link, relink) of a person added by hand also carries a ``source`` diff
  (``manual`` -> ``entra``): once linked, the person is synced.
* Creates carry no diffs: ``Change.target`` holds the data. Archives carry a ``status`` diff,
  restores a ``status`` diff plus every differing field.
* ``Change.target`` is the Entra user with ``manager_id`` replaced by the *effective* manager: the
  Entra id of a manager in scope, else ``None``. ``Change.manager_id`` is that manager's person id
  when they are in the directory already; for a manager this plan creates only
  ``Change.manager_entra_id`` is set, and apply links it to the person it creates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from entrasync.domain import fields
from entrasync.domain.model import (
    ADMIN_ROLES,
    Change,
    ChangeKind,
    Conflict,
    EntraSnapshot,
    EntraUser,
    FieldDiff,
    Kept,
    Override,
    PersonRecord,
    Plan,
    Reason,
    ScopeSettings,
    Source,
    Status,
)
from entrasync.domain.scope import scope_predicate

__all__ = ["KEPT_ADMIN_REASON", "MIN_GUARD_ARCHIVES", "change_fingerprint", "plan"]

MIN_GUARD_ARCHIVES: Final = 5
"""The safety guard only looks at the share once a plan archives at least this many people (§4.6)."""

KEPT_ADMIN_REASON: Final = "admin added by hand with no Entra match; kept so the sync cannot lock admins out"

_NAMES: Final = fields.FIELD_NAMES
_DEPTS: Final = fields.DEPARTMENTS
_KIND_ORDER: Final = {
    ChangeKind.CREATE: 0,
    ChangeKind.RESTORE: 1,
    ChangeKind.UPDATE: 2,
    ChangeKind.MOVE: 3,
    ChangeKind.ARCHIVE: 4,
}
_SEP: Final = "\x1f"
_NONE: Final = "\x00"
_NEW_PERSON: Final = -1  # "the person this plan creates": never equal to a stored manager id


def change_fingerprint(kind: str, subject: str, payload: Sequence[str]) -> str:
    """A stable id of (kind, subject, Entra data behind the change): overrides are keyed by it."""
    raw = _SEP.join((kind, subject, *payload))
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _payload(user: EntraUser, manager_entra_id: str | None, diff_fields: Sequence[str]) -> list[str]:
    """Entra's side of a create/update/move/restore: its id, every mapped value, the diffs' fields."""
    out = [user.id]
    for i, value in enumerate(user.values):
        if i == _DEPTS:
            out.append("\x1e".join(value))
        else:
            out.append(_NONE if value is None else value)
    out.append(_NONE if manager_entra_id is None else manager_entra_id)
    out.append(",".join(diff_fields))
    return out


def _key(user: EntraUser) -> str:
    return str(user.values[fields.EMAIL]).casefold()


# -- phase 1: Entra ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Scope:
    users: Mapping[str, EntraUser]  # in scope, by Entra id
    by_email: Mapping[str, str]  # e-mail key -> the first in-scope user claiming it
    duplicates: Mapping[str, list[str]]  # e-mail keys claimed by several in-scope users -> their ids


def _scope(snapshot: EntraSnapshot, settings: ScopeSettings) -> _Scope:
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
        key = _key(user)
        prev = by_email.setdefault(key, uid)
        if prev != uid:
            dups.setdefault(key, [prev]).append(uid)
    for ids in dups.values():
        ids.sort()
    return _Scope(scoped, by_email, dups)


# -- phase 2: the directory -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Directory:
    by_id: Mapping[int, PersonRecord]
    by_entra: Mapping[str, PersonRecord]  # duplicates (bad data) resolve to the lowest person id
    by_email: Mapping[str, PersonRecord]
    email_keys: Mapping[int, str]


def _index(people: Sequence[PersonRecord]) -> _Directory:
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
    return _Directory(by_id, by_entra, by_email, email_keys)


# -- phase 3: e-mails claimed twice -----------------------------------------------------------------


def _duplicates(scope: _Scope, d: _Directory) -> tuple[set[int], set[str], list[Conflict]]:
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


# -- phase 4: matching (§4.3) -----------------------------------------------------------------------


@dataclass(slots=True)
class _Matches:
    matched: dict[str, tuple[PersonRecord, Reason | None]]  # Entra id -> (person, link reason or None)
    joiners: list[EntraUser]
    handled: set[int]  # people whose fate the Entra pass decided (changed, matched, untouched)


def _match(
    snapshot: EntraSnapshot,
    scope: _Scope,
    d: _Directory,
    protected: set[int],
    claimants: set[str],
    conflicts: list[Conflict],
) -> _Matches:
    """By Entra id, else an unlinked (or dead-linked) person by e-mail. Each decision reads only the
    indexes, never an earlier decision, so the outcome does not depend on the order of the users."""
    out = _Matches({}, [], set(protected))
    for uid, user in scope.users.items():
        if uid in claimants:
            continue
        key = _key(user)
        found = d.by_entra.get(uid)
        link: Reason | None = None
        if found is not None:
            if found.id in protected:  # touched by a duplicated e-mail: left as is
                continue
        else:
            found = d.by_email.get(key)
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


_Resolver = Callable[[EntraUser], tuple[str | None, int | None]]


def _manager_resolver(scope: _Scope, d: _Directory, m: _Matches) -> _Resolver:
    joiner_ids = {u.id for u in m.joiners}
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
            return mid, _NEW_PERSON
        linked = by_entra.get(mid)  # in a conflict: keeps its current person
        if linked is not None:
            return mid, linked.id
        return None, None

    return resolve


def _effective(user: EntraUser, manager_entra_id: str | None) -> EntraUser:
    if manager_entra_id == user.manager_id:
        return user
    return EntraUser(user.id, user.values, user.mail, user.account_enabled, user.user_type, manager_entra_id)


# -- phase 5: changes -------------------------------------------------------------------------------

_Row = tuple[int, str, str, Change]


def _joiner_changes(m: _Matches, resolve: _Resolver) -> list[_Row]:
    rows: list[_Row] = []
    kind = ChangeKind.CREATE
    for user in m.joiners:
        mgr_entra, mgr_pid = resolve(user)
        subject = "e:" + user.id
        change = Change(
            kind=kind,
            subject=subject,
            reason=Reason.JOINER,
            fingerprint=change_fingerprint(kind, subject, _payload(user, mgr_entra, ())),
            entra_id=user.id,
            display_name=user.display_name,
            email=user.email,
            target=_effective(user, mgr_entra),
            manager_id=mgr_pid if mgr_pid is not None and mgr_pid != _NEW_PERSON else None,
            manager_entra_id=mgr_entra,
        )
        rows.append((0, _key(user), subject, change))
    return rows


def _matched_changes(scope: _Scope, d: _Directory, m: _Matches, resolve: _Resolver) -> tuple[list[_Row], list[int]]:
    rows: list[_Row] = []
    matched_ids: list[int] = []
    archived, manual = Status.ARCHIVED, Source.MANUAL
    scoped, by_id = scope.users, d.by_id

    def manager_label(person_id: int | None, manager_entra_id: str | None) -> str | None:
        """Managers show as e-mails in diffs: readable, unique, and stable across plans."""
        if manager_entra_id is not None:
            return scoped[manager_entra_id].email
        if person_id is None:
            return None
        mgr = by_id.get(person_id)
        return mgr.email if mgr is not None else f"#{person_id}"

    for uid, (p, link) in m.matched.items():
        user = scoped[uid]
        mgr_entra, mgr_pid = resolve(user)
        is_archived = p.status == archived
        by_hand = p.source == manual
        if p.values == user.values and p.manager_id == mgr_pid and link is None and not is_archived and not by_hand:
            matched_ids.append(p.id)
            continue

        # Slow path: something may differ. Build the diffs in display order.
        manual_fields = p.manual_fields
        diffs: list[FieldDiff] = []
        if is_archived:
            diffs.append(FieldDiff("status", p.status, Status.ACTIVE, by_hand or "status" in manual_fields))
        if link is not None:
            diffs.append(FieldDiff("entra_id", p.entra_id, uid, by_hand or "entra_id" in manual_fields))
        if by_hand:
            diffs.append(FieldDiff("source", p.source, Source.ENTRA, True))
        for name, old, new in zip(_NAMES, p.values, user.values, strict=True):
            if old != new:
                diffs.append(FieldDiff(name, old, new, by_hand or name in manual_fields))
        moves = p.manager_id != mgr_pid
        if moves:
            old_mgr, new_mgr = manager_label(p.manager_id, None), manager_label(mgr_pid, mgr_entra)
            diffs.append(FieldDiff("manager", old_mgr, new_mgr, by_hand or "manager" in manual_fields))
        if not diffs:
            matched_ids.append(p.id)
            continue
        if is_archived:
            kind, reason = ChangeKind.RESTORE, Reason.REHIRE
        elif moves:
            kind, reason = ChangeKind.MOVE, link or Reason.MANAGER_CHANGED
        else:
            kind, reason = ChangeKind.UPDATE, link or Reason.FIELDS_CHANGED
        subject = f"p:{p.id}"
        payload = _payload(user, mgr_entra, [x.field for x in diffs])
        change = Change(
            kind=kind,
            subject=subject,
            reason=reason,
            fingerprint=change_fingerprint(kind, subject, payload),
            person_id=p.id,
            entra_id=uid,
            display_name=p.display_name,
            email=p.email,
            diffs=tuple(diffs),
            target=_effective(user, mgr_entra),
            manager_id=mgr_pid if mgr_pid is not None and mgr_pid != _NEW_PERSON else None,
            manager_entra_id=mgr_entra,
        )
        rows.append((_KIND_ORDER[kind], d.email_keys[p.id], subject, change))
    return rows, matched_ids


def _leaver_changes(
    snapshot: EntraSnapshot, people: Sequence[PersonRecord], scope: _Scope, d: _Directory, m: _Matches
) -> tuple[list[_Row], list[Kept]]:
    """§4.4: everyone the Entra pass did not account for is archived, with the reason (admins added by
    hand with no Entra match are kept)."""
    users, soft_deleted, scoped = snapshot.users, snapshot.soft_deleted_ids, scope.users
    rows: list[_Row] = []
    kept: list[Kept] = []
    users_by_email: dict[str, EntraUser] | None = None
    kind = ChangeKind.ARCHIVE
    for p in people:
        if p.id in m.handled or p.status == Status.ARCHIVED:
            continue
        eid = p.entra_id
        why: Reason
        if eid is None:
            if users_by_email is None:  # built lazily: only unlinked leftovers need it
                users_by_email = {}
                for u in sorted(users.values(), key=lambda u: u.id):
                    users_by_email.setdefault(_key(u), u)
            key = d.email_keys[p.id]
            if key in scope.by_email:
                continue  # an in-scope user's e-mail, blocked by a reported conflict: left as is
            same = users_by_email.get(key)
            if same is not None:
                why = Reason.DISABLED if not same.account_enabled else Reason.OUT_OF_SCOPE
            elif p.source == Source.MANUAL and not ADMIN_ROLES.isdisjoint(p.roles):
                kept.append(Kept(person_id=p.id, reason=KEPT_ADMIN_REASON))
                continue
            else:
                why = Reason.NOT_IN_ENTRA
        else:
            user = users.get(eid)
            if user is not None:
                if eid in scoped:
                    continue  # a second person linked to an in-scope user: never archive in scope
                why = Reason.OUT_OF_SCOPE if user.account_enabled else Reason.DISABLED
            elif eid in soft_deleted:
                why = Reason.SOFT_DELETED
            elif snapshot.exists(eid):
                why = Reason.OUT_OF_SCOPE  # outside the Graph filter
            else:
                why = Reason.HARD_DELETED
        subject = f"p:{p.id}"
        change = Change(
            kind=kind,
            subject=subject,
            reason=why,
            fingerprint=change_fingerprint(kind, subject, (why,)),
            person_id=p.id,
            entra_id=eid,
            display_name=p.display_name,
            email=p.email,
            diffs=(FieldDiff("status", p.status, Status.ARCHIVED, "status" in p.manual_fields),),
        )
        rows.append((4, d.email_keys[p.id], subject, change))
    return rows, kept


# -- the plan ---------------------------------------------------------------------------------------


def plan(
    snapshot: EntraSnapshot,
    people: Sequence[PersonRecord],
    settings: ScopeSettings,
    overrides: Collection[Override] = (),
) -> Plan:
    """Compute the plan that makes the directory match Entra, without changing anything.

    ``snapshot`` must come from a completed fetch (§4.1); with the group filter on it must carry the
    group membership, else this raises ``ValueError`` rather than plan from partial data. A 100k plan
    allocates about a million acyclic objects: the refresh runs it with the cyclic GC paused.
    """
    scope = _scope(snapshot, settings)
    d = _index(people)
    protected, claimants, conflicts = _duplicates(scope, d)
    m = _match(snapshot, scope, d, protected, claimants, conflicts)
    resolve = _manager_resolver(scope, d, m)
    rows = _joiner_changes(m, resolve)
    changed, matched_ids = _matched_changes(scope, d, m, resolve)
    rows += changed
    leavers, kept = _leaver_changes(snapshot, people, scope, d, m)
    rows += leavers

    # Overrides (§4.5) and a deterministic order.
    rejected = {(o.subject, ChangeKind(o.kind).value, o.fingerprint) for o in overrides}
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    result = Plan(
        kept=sorted(kept, key=lambda k: k.person_id),
        conflicts=sorted(conflicts, key=lambda c: (c.email.casefold(), c.entra_ids)),
        matched_ids=sorted(matched_ids),
    )
    for _, _, _, change in rows:
        if rejected and (change.subject, change.kind.value, change.fingerprint) in rejected:
            result.overridden.append(change)
        else:
            result.changes.append(change)
    _apply_guard(result, people, settings)
    return result


def _percent(value: float) -> str:
    return f"{value:g}%"


def _apply_guard(result: Plan, people: Sequence[PersonRecord], settings: ScopeSettings) -> None:
    """§4.6: hold a plan that archives too many synced people, or every admin, even in Auto-sync."""
    archive_ids = {c.person_id for c in result.changes if c.kind is ChangeKind.ARCHIVE}
    if not archive_ids:
        return
    synced = 0
    admins: list[int] = []
    for p in people:
        if p.status == Status.ARCHIVED:
            continue
        if p.source == Source.ENTRA:
            synced += 1
        if not ADMIN_ROLES.isdisjoint(p.roles):
            admins.append(p.id)
    reasons: list[str] = []
    n = len(archive_ids)
    guard = settings.guard_percent
    if n >= MIN_GUARD_ARCHIVES and n * 100 > guard * synced:
        share = f"{n * 100 / synced:.1f}%" if synced else "more than all"
        reasons.append(
            f"{n} of {synced} synced people ({share}) would be archived; the safety guard allows {_percent(guard)}."
        )
    if admins and all(a in archive_ids for a in admins):
        n_admins = len(admins)
        who = "the only super admin or IT admin" if n_admins == 1 else f"all {n_admins} super admins and IT admins"
        reasons.append(f"{who} would be archived, which would lock the admins out.")
    if reasons:
        result.held = True
        result.hold_reason = "Held for review: " + " Also, ".join(reasons)
