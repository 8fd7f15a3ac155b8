"""The sync planner (spec §4.2-§4.6): what Entra holds vs the directory -> a :class:`Plan`.

A pure function: no I/O, no clock, no randomness, and the result does not depend on the order of
its inputs, so the same refresh always yields the same plan and the same fingerprints (overrides
rely on that). It is built for 100k people x 100k users: every lookup is a dict built once, and an
unchanged person costs two tuple builds and one comparison.

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
  Entra id of a manager in scope, else ``None``. Apply links it to the person holding that Entra id
  after the plan's creates and links are written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from typing import Any, Final

from entrasync.domain.model import (
    ADMIN_ROLES,
    SYNCED_FIELDS,
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

# Mapped fields compared on every person, in SYNCED_FIELDS order (``manager`` is handled apart).
_FIELDS: Final = tuple(f for f in SYNCED_FIELDS if f != "manager")
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


def _s(value: str | None) -> str:
    return _NONE if value is None else value


def change_fingerprint(kind: str, subject: str, payload: Sequence[str]) -> str:
    """A stable id of (kind, subject, Entra data behind the change): overrides are keyed by it."""
    raw = _SEP.join((kind, subject, *payload))
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _target_payload(
    user: EntraUser, target: tuple[Any, ...], manager_entra_id: str | None, diff_fields: Sequence[str]
) -> list[str]:
    """Entra's side of a create/update/move/restore: its id, every mapped value, the diffs' fields."""
    out = [user.id]
    out += [_NONE if value is None else value for value in target[:-1]]
    out.append("\x1e".join(target[-1]))  # departments
    out.append(_s(manager_entra_id))
    out.append(",".join(diff_fields))
    return out


def _percent(value: float) -> str:
    return f"{value:g}%"


def plan(
    snapshot: EntraSnapshot,
    people: Sequence[PersonRecord],
    settings: ScopeSettings,
    overrides: Collection[Override] = (),
) -> Plan:
    """Compute the plan that makes the directory match Entra, without changing anything.

    ``snapshot`` must come from a completed fetch (§4.1); with the group filter on it must carry the
    group membership, else this raises ``ValueError`` rather than plan from partial data. A 100k plan
    allocates about a million acyclic objects: callers pause the cyclic GC around it
    (``entrasync.bulkwork.gc_paused``, as the refresh does) so its full passes do not walk them again and again.
    """
    group_ids = snapshot.group_member_ids
    if settings.group_filter and group_ids is None:
        raise ValueError("the group filter is on but the snapshot has no group membership")
    users = snapshot.users
    soft_deleted = snapshot.soft_deleted_ids
    test = scope_predicate(settings, group_ids)

    # --- Entra side: who is in scope, and which e-mails more than one of them claims.
    scoped: dict[str, EntraUser] = {}
    user_by_email: dict[str, str] = {}
    dup_emails: dict[str, list[str]] = {}
    for user in users.values():
        if not test(user):
            continue
        uid = user.id
        scoped[uid] = user
        key = (user.mail or user.user_principal_name).casefold()
        prev = user_by_email.setdefault(key, uid)
        if prev != uid:
            dup_emails.setdefault(key, [prev]).append(uid)

    # --- Directory side, indexed once. Duplicates (bad data) resolve to the lowest person id.
    person_by_id: dict[int, PersonRecord] = {}
    person_by_entra: dict[str, PersonRecord] = {}
    person_by_email: dict[str, PersonRecord] = {}
    email_keys: dict[int, str] = {}
    for p in people:
        pid = p.id
        person_by_id[pid] = p
        key = p.email.casefold()
        email_keys[pid] = key
        other = person_by_email.get(key)
        if other is None or other.id > pid:
            person_by_email[key] = p
        if p.entra_id is not None:
            other = person_by_entra.get(p.entra_id)
            if other is None or other.id > pid:
                person_by_entra[p.entra_id] = p

    conflicts: list[Conflict] = []
    protected: set[int] = set()  # people a duplicated e-mail touches: left exactly as they are
    conflict_users: set[str] = set()
    for key, ids in dup_emails.items():
        ids.sort()
        conflict_users.update(ids)
        holder = person_by_email.get(key)
        if holder is not None:
            protected.add(holder.id)
        for uid in ids:
            linked = person_by_entra.get(uid)
            if linked is not None:
                protected.add(linked.id)
        conflicts.append(
            Conflict(
                email=scoped[ids[0]].email,
                entra_ids=tuple(ids),
                person_id=holder.id if holder is not None else None,
            )
        )

    # --- Matching (§4.3): by Entra id, else an unlinked (or dead-linked) person by e-mail.
    # Each decision below reads only the indexes built above, never an earlier decision, so the
    # outcome does not depend on the order of the users.
    handled = set(protected)  # people whose fate the Entra pass decided (changed, matched, untouched)
    matched: dict[str, tuple[PersonRecord, Reason | None]] = {}
    joiners: list[EntraUser] = []
    for uid, user in scoped.items():
        if uid in conflict_users:
            continue
        key = (user.mail or user.user_principal_name).casefold()
        found = person_by_entra.get(uid)
        link: Reason | None = None
        if found is not None:
            if found.id in protected:  # touched by a duplicated e-mail: left as is
                continue
        else:
            found = person_by_email.get(key)
            if found is None:
                joiners.append(user)
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
        if key != email_keys[found.id]:
            holder = person_by_email.get(key)
            if holder is not None and holder.id != found.id:
                conflicts.append(Conflict(email=user.email, entra_ids=(uid,), person_id=holder.id))
                handled.add(found.id)
                continue
        matched[uid] = (found, link)
        handled.add(found.id)
    joiner_ids = {u.id for u in joiners}

    def resolve_manager(user: EntraUser) -> tuple[str | None, int | None]:
        """Entra's manager -> (effective manager Entra id, the person who is/will be that manager)."""
        manager_entra_id = user.manager_id
        if manager_entra_id is None or manager_entra_id not in scoped or manager_entra_id == user.id:
            return None, None  # outside the scope (disabled, deleted, filtered out): no manager
        hit = matched.get(manager_entra_id)
        if hit is not None:
            return manager_entra_id, hit[0].id
        if manager_entra_id in joiner_ids:
            return manager_entra_id, _NEW_PERSON
        linked = person_by_entra.get(manager_entra_id)  # in a conflict: keeps its current person
        if linked is not None:
            return manager_entra_id, linked.id
        return None, None

    def target_user(user: EntraUser, manager_entra_id: str | None) -> EntraUser:
        if manager_entra_id == user.manager_id:
            return user
        return EntraUser(
            id=user.id,
            user_principal_name=user.user_principal_name,
            mail=user.mail,
            display_name=user.display_name,
            given_name=user.given_name,
            surname=user.surname,
            job_title=user.job_title,
            employee_id=user.employee_id,
            office_location=user.office_location,
            department=user.department,
            account_enabled=user.account_enabled,
            user_type=user.user_type,
            manager_id=manager_entra_id,
        )

    def manager_label(person_id: int | None, manager_entra_id: str | None) -> str | None:
        """Managers show as e-mails in diffs: readable, and stable across plans."""
        if manager_entra_id is not None:
            return scoped[manager_entra_id].email
        if person_id is None:
            return None
        mgr = person_by_id.get(person_id)
        return mgr.email if mgr is not None else f"#{person_id}"

    rows: list[tuple[int, str, str, Change]] = []
    matched_ids: list[int] = []
    create_kind = ChangeKind.CREATE

    for user in joiners:
        mgr_entra, _ = resolve_manager(user)
        dep = user.department
        email = user.mail or user.user_principal_name
        target: tuple[Any, ...] = (
            email,
            user.user_principal_name,
            user.display_name,
            user.given_name,
            user.surname,
            user.job_title,
            user.employee_id,
            user.office_location,
            (dep,) if dep else (),
        )
        subject = "e:" + user.id
        fp = change_fingerprint(create_kind, subject, _target_payload(user, target, mgr_entra, ()))
        change = Change(
            kind=ChangeKind.CREATE,
            subject=subject,
            reason=Reason.JOINER,
            fingerprint=fp,
            entra_id=user.id,
            display_name=user.display_name,
            email=email,
            target=target_user(user, mgr_entra),
        )
        rows.append((0, email.casefold(), subject, change))

    archived = Status.ARCHIVED
    manual = Source.MANUAL
    for uid, (p, link) in matched.items():
        user = scoped[uid]
        dep = user.department
        target = (
            user.mail or user.user_principal_name,
            user.user_principal_name,
            user.display_name,
            user.given_name,
            user.surname,
            user.job_title,
            user.employee_id,
            user.office_location,
            (dep,) if dep else (),
        )
        current: tuple[Any, ...] = (
            p.email,
            p.user_principal_name,
            p.display_name,
            p.given_name,
            p.surname,
            p.job_title,
            p.employee_id,
            p.office_location,
            p.departments,
        )
        mgr_entra, mgr_pid = resolve_manager(user)
        is_archived = p.status == archived
        by_hand = p.source == manual
        if current == target and p.manager_id == mgr_pid and link is None and not is_archived and not by_hand:
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
        for name, old, new in zip(_FIELDS, current, target, strict=True):
            if name == "departments":
                old = tuple(p.departments)  # tolerate a list from the storage layer
            if old != new:
                diffs.append(FieldDiff(name, old, new, by_hand or name in manual_fields))
        manager_moves = p.manager_id != mgr_pid
        if manager_moves:
            diffs.append(
                FieldDiff(
                    "manager",
                    manager_label(p.manager_id, None),
                    manager_label(mgr_pid, mgr_entra),
                    by_hand or "manager" in manual_fields,
                )
            )
        if not diffs:
            matched_ids.append(p.id)
            continue

        if is_archived:
            kind, reason = ChangeKind.RESTORE, Reason.REHIRE
        elif manager_moves:
            kind, reason = ChangeKind.MOVE, link or Reason.MANAGER_CHANGED
        else:
            kind, reason = ChangeKind.UPDATE, link or Reason.FIELDS_CHANGED
        subject = f"p:{p.id}"
        payload = _target_payload(user, target, mgr_entra, [d.field for d in diffs])
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
            target=target_user(user, mgr_entra),
        )
        rows.append((_KIND_ORDER[kind], email_keys[p.id], subject, change))

    # --- Leavers (§4.4): everyone the Entra pass did not account for.
    kept: list[Kept] = []
    users_by_email: dict[str, EntraUser] | None = None
    archive_kind = ChangeKind.ARCHIVE
    for p in people:
        if p.id in handled or p.status == archived:
            continue
        eid = p.entra_id
        why: Reason
        if eid is None:
            if users_by_email is None:  # built lazily: only unlinked leftovers need it
                users_by_email = {}
                for u in sorted(users.values(), key=lambda u: u.id):
                    users_by_email.setdefault(u.email.casefold(), u)
            key = email_keys[p.id]
            if key in user_by_email:
                continue  # an in-scope user's e-mail, blocked by a reported conflict: left as is
            same = users_by_email.get(key)
            if same is not None:
                why = Reason.DISABLED if not same.account_enabled else Reason.OUT_OF_SCOPE
            elif p.source == manual and not ADMIN_ROLES.isdisjoint(p.roles):
                kept.append(Kept(person_id=p.id, reason=KEPT_ADMIN_REASON))
                continue
            else:
                why = Reason.NOT_IN_ENTRA
        else:
            user_or_none = users.get(eid)
            if user_or_none is not None:
                if eid in scoped:
                    continue  # a second person linked to an in-scope user: never archive in scope
                why = Reason.OUT_OF_SCOPE if user_or_none.account_enabled else Reason.DISABLED
            elif eid in soft_deleted:
                why = Reason.SOFT_DELETED
            elif snapshot.exists(eid):
                why = Reason.OUT_OF_SCOPE  # outside the Graph filter
            else:
                why = Reason.HARD_DELETED
        subject = f"p:{p.id}"
        change = Change(
            kind=archive_kind,
            subject=subject,
            reason=why,
            fingerprint=change_fingerprint(archive_kind, subject, (why,)),
            person_id=p.id,
            entra_id=eid,
            display_name=p.display_name,
            email=p.email,
            diffs=(FieldDiff("status", p.status, Status.ARCHIVED, "status" in p.manual_fields),),
        )
        rows.append((4, email_keys[p.id], subject, change))

    # --- Overrides (§4.5) and a deterministic order.
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
        who = (
            "the only super admin or IT admin"
            if len(admins) == 1
            else (f"all {len(admins)} super admins and IT admins")
        )
        reasons.append(f"{who} would be archived, which would lock the admins out.")
    if reasons:
        result.held = True
        result.hold_reason = "Held for review: " + " Also, ".join(reasons)
