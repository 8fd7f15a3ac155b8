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

import dataclasses
import hashlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from typing import Final

from entrasync.domain import fields
from entrasync.domain.guard import MIN_GUARD_ARCHIVES, Census, apply_guard
from entrasync.domain.matching import (
    KEEP_CURRENT,
    Directory,
    Matches,
    Resolver,
    Scope,
    duplicates,
    effective,
    email_key,
    index_directory,
    manager_resolver,
    match,
    scope_users,
)
from entrasync.domain.model import (
    ADMIN_ROLES,
    Change,
    ChangeKind,
    EntraSnapshot,
    EntraUser,
    FieldDiff,
    Kept,
    PersonRecord,
    Plan,
    Reason,
    ScopeSettings,
    Source,
    Status,
    slots_factory,
)
from entrasync.domain.overrides import NOT_FIELDS, Override, Overrides, index, value_key

__all__ = ["KEPT_ADMIN_REASON", "KEPT_MANUAL_REASON", "MIN_GUARD_ARCHIVES", "change_fingerprint", "plan"]

KEPT_ADMIN_REASON: Final = "admin added by hand with no Entra match; kept so the sync cannot lock admins out"
KEPT_MANUAL_REASON: Final = "added by hand with no Entra match; kept (People added by hand: keep)"

_NAMES: Final = fields.FIELD_NAMES
_DEPTS: Final = fields.DEPARTMENTS
_KIND_ORDER: Final = {
    ChangeKind.CREATE: 0,
    ChangeKind.RESTORE: 1,
    ChangeKind.UPDATE: 2,
    ChangeKind.MOVE: 3,
    ChangeKind.ARCHIVE: 4,
}
_CUSTOM0: Final = fields.INDEX[fields.CUSTOM_FIELDS[0]]
_N_CUSTOM: Final = len(fields.CUSTOM_FIELDS)
_SEP: Final = "\x1f"
_NONE: Final = "\x00"


def change_fingerprint(kind: str, subject: str, payload: Sequence[str]) -> str:
    """A stable id of (kind, subject, Entra data behind the change): overrides are keyed by it."""
    raw = _SEP.join((kind, subject, *payload))
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _payload(user: EntraUser, manager_entra_id: str | None, diff_fields: Sequence[str]) -> list[str]:
    """Entra's side of a create/update/move/restore: its id, every mapped value, the diffs' fields."""
    values = user.values
    if values[_CUSTOM0:].count(None) == _N_CUSTOM:  # no custom field: the payload the fields before gave
        values = values[:_CUSTOM0]
    out = [user.id]
    out += [
        v if v.__class__ is str else _NONE if v is None else "\x1e".join(v) if v.__class__ is tuple else str(v)
        for v in values  # strings first: most values are
    ]
    out.append(_NONE if manager_entra_id is None else manager_entra_id)
    out.append(",".join(diff_fields))
    return out


# -- phase 5: changes -------------------------------------------------------------------------------

_CHANGE = slots_factory(Change, [f.name for f in dataclasses.fields(Change)])

_Row = tuple[int, str, str, Change]


def _joiner_changes(m: Matches, resolve: Resolver) -> list[_Row]:
    rows: list[_Row] = []
    append = rows.append
    kind, joiner = ChangeKind.CREATE, Reason.JOINER
    make = _CHANGE  # the hot loop of a first sync: one Change per joiner, its slots written directly
    for user in m.joiners:
        mgr_entra, mgr_pid = resolve(user)
        if mgr_pid == KEEP_CURRENT:  # a joiner has no current manager
            mgr_entra, mgr_pid = None, None
        subject = "e:" + user.id
        fingerprint = change_fingerprint(kind, subject, _payload(user, mgr_entra, ()))
        target = user if mgr_entra == user.manager_id else effective(user, mgr_entra)
        manager_id = mgr_pid if mgr_pid is not None and mgr_pid >= 0 else None  # NEW_PERSON: not yet an id
        change = make(kind, subject, joiner, fingerprint, None, user.id, user.display_name, user.email, (), target,
                      manager_id, mgr_entra)  # fmt: skip
        append((0, email_key(user), subject, change))
    return rows


def _keep_create_only(user: EntraUser, p: PersonRecord, at: tuple[int, ...]) -> EntraUser:
    """The user with the person's own values in the create-only fields (§12: written on create only)."""
    values = list(user.values)
    for i in at:
        values[i] = p.values[i]
    return EntraUser(user.id, tuple(values), user.mail, user.account_enabled, user.user_type, user.manager_id)


def _matched_changes(
    scope: Scope,
    d: Directory,
    m: Matches,
    resolve: Resolver,
    rejected_move: Callable[[str, str], bool],
    create_only: tuple[int, ...] = (),
) -> tuple[list[_Row], list[int]]:
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
        if create_only:
            user = _keep_create_only(user, p, create_only)
        mgr_entra, mgr_pid = resolve(user)
        if mgr_pid == KEEP_CURRENT and not (mgr_entra is not None and rejected_move(f"p:{p.id}", mgr_entra)):
            # Entra's manager is a rejected joiner: stay with the current one. Only a move the admin
            # rejected too is still listed (as overridden, below), so rejecting everything shows it all.
            mgr_pid = p.manager_id
            current = by_id.get(mgr_pid) if mgr_pid is not None else None
            mgr_entra = current.entra_id if current is not None and current.entra_id in scoped else None
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
            target=effective(user, mgr_entra),
            manager_id=mgr_pid if mgr_pid is not None and mgr_pid >= 0 else None,
            manager_entra_id=mgr_entra,
        )
        rows.append((_KIND_ORDER[kind], d.email_keys[p.id], subject, change))
    return rows, matched_ids


def _leaver_changes(
    snapshot: EntraSnapshot,
    people: Sequence[PersonRecord],
    scope: Scope,
    d: Directory,
    m: Matches,
    keep_manual: bool = False,
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
                    users_by_email.setdefault(email_key(u), u)
            key = d.email_keys[p.id]
            if key in scope.by_email:
                continue  # an in-scope user's e-mail, blocked by a reported conflict: left as is
            same = users_by_email.get(key)
            if same is not None:
                why = Reason.DISABLED if not same.account_enabled else Reason.OUT_OF_SCOPE
            elif p.source == Source.MANUAL and not ADMIN_ROLES.isdisjoint(p.roles):
                kept.append(Kept(person_id=p.id, reason=KEPT_ADMIN_REASON))
                continue
            elif p.source == Source.MANUAL and keep_manual:
                kept.append(Kept(person_id=p.id, reason=KEPT_MANUAL_REASON))
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


def _honour(change: Change, d: Directory, ov: Overrides) -> tuple[Change | None, Change | None]:
    """(what is still proposed, what is listed as overridden) of one change under the overrides."""
    if ov.whole(change):
        return None, change
    mine = ov.of(change.subject)
    user = change.target
    if not mine or user is None or change.person_id is None or change.kind not in _FIELD_KINDS:
        return change, None
    kept: list[FieldDiff] = []
    dropped: list[FieldDiff] = []
    for diff in change.diffs:
        if diff.field in NOT_FIELDS:
            kept.append(diff)
            continue
        value = change.manager_entra_id if diff.field == "manager" else user.get(diff.field)
        (dropped if (diff.field, value_key(value)) in mine else kept).append(diff)
    if not dropped:
        return change, None
    if not kept or all(x.field == "source" for x in kept):  # a "source" diff alone takes nobody over
        return None, change
    # What stays proposed writes the directory's current value into every overridden field.
    p = d.by_id[change.person_id]
    values = list(user.values)
    manager_id, manager_entra = change.manager_id, change.manager_entra_id
    for diff in dropped:
        if diff.field == "manager":  # stays with the current manager
            current = d.by_id.get(p.manager_id) if p.manager_id is not None else None
            manager_id, manager_entra = p.manager_id, current.entra_id if current is not None else None
        else:
            i = fields.INDEX[diff.field]
            values[i] = p.values[i]
    subject = change.subject
    overridden = replace(
        change,
        diffs=tuple(dropped),
        fingerprint=change_fingerprint(
            change.kind, subject, _payload(user, change.manager_entra_id, [x.field for x in dropped])
        ),
    )
    kind = change.kind
    reason = change.reason
    if kind is not ChangeKind.RESTORE:
        kind = ChangeKind.MOVE if any(x.field == "manager" for x in kept) else ChangeKind.UPDATE
        if kind is ChangeKind.UPDATE and reason is Reason.MANAGER_CHANGED:
            reason = Reason.FIELDS_CHANGED
    target = EntraUser(user.id, tuple(values), user.mail, user.account_enabled, user.user_type, manager_entra)
    proposed = replace(
        change, kind=kind, reason=reason, diffs=tuple(kept), target=target, manager_id=manager_id,
        manager_entra_id=manager_entra,
        fingerprint=change_fingerprint(kind, subject, _payload(target, manager_entra, [x.field for x in kept])),
    )  # fmt: skip
    return proposed, overridden


_FIELD_KINDS: Final = frozenset({ChangeKind.UPDATE, ChangeKind.MOVE, ChangeKind.RESTORE})


def plan(
    snapshot: EntraSnapshot,
    people: Sequence[PersonRecord],
    settings: ScopeSettings,
    overrides: Collection[Override] | Overrides = (),
    *,
    census: Census | None = None,
) -> Plan:
    """Compute the plan that makes the directory match Entra, without changing anything.

    ``snapshot`` must come from a completed fetch (§4.1); with the group filter on it must carry the
    group membership, else this raises ``ValueError`` rather than plan from partial data. A 100k plan
    allocates about a million acyclic objects: the refresh runs it with the cyclic GC paused.
    ``census``: the whole directory's synced people and admins, when ``people`` is only part of it.
    """
    scope = scope_users(snapshot, settings)
    d = index_directory(people)
    protected, claimants, conflicts = duplicates(scope, d)
    m = match(snapshot, scope, d, protected, claimants, conflicts, settings.link_by)
    ov = index(overrides)
    resolve = manager_resolver(scope, d, m)
    rows = _joiner_changes(m, resolve)
    rejected: frozenset[str] = frozenset()
    while ov:  # joiners rejected in review manage nobody; settles in a round or two
        now_rejected = frozenset(c.entra_id for *_, c in rows if c.entra_id is not None and ov.whole(c))
        if now_rejected == rejected:
            break
        rejected = now_rejected
        resolve = manager_resolver(scope, d, m, rejected)
        rows = _joiner_changes(m, resolve)
    create_only = tuple(fields.INDEX[n] for n in sorted(settings.create_only, key=fields.INDEX.__getitem__))
    changed, matched_ids = _matched_changes(
        scope, d, m, resolve, lambda subject, mid: ov.field_overridden(subject, "manager", mid), create_only
    )
    rows += changed
    leavers, kept = _leaver_changes(snapshot, people, scope, d, m, settings.keep_manual)
    rows += leavers

    # Overrides (§4.5), field by field, and a deterministic order.
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    result = Plan(
        kept=sorted(kept, key=lambda k: k.person_id),
        conflicts=sorted(conflicts, key=lambda c: (c.email.casefold(), c.entra_ids)),
        matched_ids=sorted(matched_ids),
    )
    for _, _, _, change in rows:
        if not ov:
            result.changes.append(change)
            continue
        proposed, overridden = _honour(change, d, ov)
        if proposed is not None:
            result.changes.append(proposed)
        if overridden is not None:
            result.overridden.append(overridden)
    apply_guard(result, people, settings, census)
    return result
