"""Explain one person or one Entra user (spec §12): why they are (not) in scope, how they match, and
what the next refresh would do to them, field by field. Read-only: nothing is stored, not even a run.

Graph is read on demand (adapters.graph.lookup: the user, the users claiming its e-mail, its manager,
the Graph filter and the groups for each of them: a handful of requests) outside any transaction; the
directory's people concerned are read in short read transactions; then the pure planner runs on just
those users and people (domain.explain.outcome), so the answer follows the sync's own rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from entrasync.adapters.db.people_reads import Subset
from entrasync.adapters.graph import lookup
from entrasync.adapters.graph.client import GraphClient
from entrasync.adapters.graph.errors import GraphError
from entrasync.adapters.graph.mapping import UserMapper, mapper_for
from entrasync.domain import fields
from entrasync.domain.explain import MatchKind, Outcome, email_verdict, outcome
from entrasync.domain.model import EntraSnapshot, EntraUser, PersonRecord
from entrasync.domain.scope import email_key, in_scope
from entrasync.domain.settings import SyncSettings
from entrasync.errors import NotFoundError, UpstreamError, ValidationError
from entrasync.services import connection
from entrasync.services.context import AppContext
from entrasync.services.preview import change_public, conflict_public, diff_public

__all__ = ["Explanation", "explain"]

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MAX_EXTRA_IDS = 10
MAX_QUERY = 320


@dataclass
class _Reads:
    """What Graph said: live users by id (raw JSON), ids found nowhere, soft-deleted ids."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    soft_deleted: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)
    # Users read only to know they exist (linked to a person concerned): their scope is not asked of
    # Graph, it cannot change this person's outcome.
    existing_only: set[str] = field(default_factory=set)
    # The organisation's attribute mapping (§12): what to $select, and how a user's JSON becomes values.
    mapper: UserMapper = field(default_factory=mapper_for)

    @property
    def select(self) -> str:
        return ",".join(self.mapper.select)

    def user(self, d: dict[str, Any]) -> EntraUser:
        return self.mapper.user_from_graph(d)

    def add(self, d: dict[str, Any] | None) -> None:
        if d is not None and isinstance(d.get("id"), str):
            self.users[d["id"]] = d


@dataclass
class Explanation:
    query: str
    user: dict[str, Any] | None
    person: dict[str, Any] | None
    filters: dict[str, Any]
    in_scope: bool | None
    match: dict[str, Any]
    next_refresh: dict[str, Any]
    graph_requests: int

    def public(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "entra_user": self.user,
            "person": self.person,
            "filters": self.filters,
            "in_scope": self.in_scope,
            "match": self.match,
            "next_refresh": self.next_refresh,
            "graph_requests": self.graph_requests,
        }


def explain(ctx: AppContext, org_id: int, query: str, *, client: GraphClient | None = None) -> Explanation:
    """Explain ``query`` (an e-mail, a user principal name or an Entra object id). Raises NotFoundError
    (one sentence) when neither Entra nor the directory knows it."""
    q = (query or "").strip()
    if not q or len(q) > MAX_QUERY or "\x00" in q:
        raise ValidationError({"q": "Give an e-mail, a user principal name or an Entra object id."})
    with ctx.read() as uow:
        settings = uow.settings.load(org_id)
        hits = uow.people.load_records(org_id, only=_subset_for_query(q))
    own = client is None
    gclient = client or connection.connected_client(ctx, org_id)
    try:
        return _explain(ctx, org_id, q, settings, hits, gclient)
    except GraphError as exc:
        raise UpstreamError(f"Reading Microsoft Entra ID failed: {exc}") from exc
    finally:
        if own:
            gclient.close()


def _subset_for_query(q: str) -> Subset:
    return Subset(entra_ids=frozenset({q, q.lower()}) if GUID.match(q) else frozenset(), emails=frozenset({q}))


def _pick_person(q: str, hits: list[PersonRecord]) -> PersonRecord | None:
    key = q.casefold()
    for p in sorted(hits, key=lambda p: p.id):
        if (p.entra_id or "").casefold() == key or p.email.casefold() == key:
            return p
    for p in hits:
        if str(p.values[fields.UPN] or "").casefold() == key:
            return p
    return None


def _explain(
    ctx: AppContext, org_id: int, q: str, settings: SyncSettings, hits: list[PersonRecord], client: GraphClient
) -> Explanation:
    start = client.request_count
    reads = _Reads(mapper=mapper_for(settings.field_maps()))
    sel = reads.select
    person = _pick_person(q, hits)
    # 1. The Entra user: by object id; else the one the person asked for is linked to; else by user
    #    principal name, else by e-mail (the query's, then the person's).
    user = lookup.user_by_key(client, q, sel) if GUID.match(q) else None
    if user is None and person is not None and person.entra_id:
        user = lookup.user_by_key(client, person.entra_id, sel)
    if user is None and "@" in q:
        user = lookup.user_by_key(client, q, sel)
    claimants: list[dict[str, Any]] = []
    for email in (q, person.email if person is not None else None):
        if user is None and email is not None and "@" in email:
            claimants = lookup.users_with_email(client, email, sel)
            user = min(claimants, key=lambda d: d["id"]) if claimants else None
    if user is None and person is None:
        raise NotFoundError(f"{q!r} is neither a user in Microsoft Entra ID nor a person in the directory.")
    reads.add(user)
    entra = reads.user(user) if user is not None else None
    if entra is not None:
        if not claimants:
            claimants = lookup.users_with_email(client, entra.email, sel)
        for d in claimants:
            reads.add(d)
        if entra.manager_id and entra.manager_id not in reads.users:
            reads.add(lookup.user_by_key(client, entra.manager_id, sel))
    # 2. The people concerned: linked to or holding the e-mail of any user read, the person asked for,
    #    and their managers (diffs name managers by e-mail).
    by_employee = settings.link_by == "employee_id"
    people, managers_only = _people(ctx, org_id, reads, person, by_employee)
    mine = person or next((p for p in people if entra is not None and p.entra_id == entra.id), None)
    if mine is not None and entra is not None and email_key(mine.email) != email_key(entra.email):
        # The person's e-mail changes: who else claims the one it holds now (a conflict's other side)?
        for d in lookup.users_with_email(client, mine.email, sel):
            reads.add(d)
        people, managers_only = _people(ctx, org_id, reads, person, by_employee)
    # 3. Users those people are linked to (is the link dead? out of scope?), and deleted ones.
    linked = [p.entra_id for p in people if p.entra_id and p.entra_id not in reads.users and p.id not in managers_only]
    for eid in linked[:MAX_EXTRA_IDS]:
        found = lookup.user_by_key(client, eid, sel)
        if found is not None:
            reads.add(found)
            reads.existing_only.add(eid)
        elif lookup.is_soft_deleted(client, eid):
            reads.soft_deleted.add(eid)
        else:
            reads.gone.add(eid)
    if person is None and entra is not None:
        # Linked to this user, else holding its e-mail unlinked or linked to a deleted account (a person
        # linked to another live user is the other side of a conflict, not this user's person).
        key = email_key(entra.email)
        person = next((p for p in people if p.entra_id == entra.id), None) or next(
            (p for p in people if email_key(p.email) == key and (p.entra_id or "") not in reads.users), None
        )
    # 4. Scope facts for every user read, and the verdicts for the one explained.
    snapshot, verdict = _scope(client, settings, reads, entra)
    with ctx.read() as uow:
        overrides = uow.overrides.load(org_id)
        override_rows = uow.overrides.page(org_id, person_id=person.id if person is not None else None)
    out = outcome(
        snapshot, people, settings.scope(), overrides,
        user_id=entra.id if entra is not None else None, person_id=person.id if person is not None else None,
    )  # fmt: skip
    if person is None and entra is not None:
        # No person by Entra id or e-mail, yet the plan links one (first link by employee id): that one.
        taken = next((c.person_id for c in out.changes if c.entra_id == entra.id and c.person_id is not None), None)
        if taken is not None:
            person = next(p for p in people if p.id == taken)
            with ctx.read() as uow:
                override_rows = uow.overrides.page(org_id, person_id=person.id)
            out = outcome(snapshot, people, settings.scope(), overrides, user_id=entra.id, person_id=person.id)
    return Explanation(
        query=q,
        user=_user_public(entra) if entra is not None else None,
        person=_person_public(person) if person is not None else None,
        filters=verdict,
        in_scope=(entra.id in snapshot.users and _scoped(snapshot, settings, entra)) if entra is not None else None,
        match=_match(entra, person, out, reads),
        next_refresh=_next(out, override_rows),
        graph_requests=client.request_count - start,
    )


def _people(
    ctx: AppContext, org_id: int, reads: _Reads, person: PersonRecord | None, by_employee: bool
) -> tuple[list[PersonRecord], set[int]]:
    """The people concerned, and which of them are there only as someone's current manager. With the
    first link by employee id, the people holding a read user's employee id too."""
    users = [reads.user(d) for d in reads.users.values()]
    at = fields.INDEX["employee_id"]
    subset = Subset(
        ids=frozenset({person.id} if person is not None else ()),
        entra_ids=frozenset(u.id for u in users),
        emails=frozenset(u.email for u in users) | ({person.email} if person is not None else set()),
        employee_ids=frozenset(e for u in users if isinstance(e := u.values[at], str)) if by_employee else frozenset(),
    )
    with ctx.read() as uow:
        found = {p.id: p for p in uow.people.load_records(org_id, only=subset)}
        managers = {p.manager_id for p in found.values() if p.manager_id is not None} - set(found)
        if managers:
            for p in uow.people.load_records(org_id, only=Subset(ids=frozenset(managers))):
                found[p.id] = p
    return sorted(found.values(), key=lambda p: p.id), managers


def _scope(
    client: GraphClient, settings: SyncSettings, reads: _Reads, entra: EntraUser | None
) -> tuple[EntraSnapshot, dict[str, Any]]:
    """The snapshot a refresh would have for these users (the Graph filter applied by Graph, the group
    membership of the listed groups) and the explained user's verdict per filter."""
    graph_filter, groups = settings.active_graph_filter, settings.active_group_ids
    listed = {g.lower() for g in groups or ()}
    users = {uid: reads.user(d) for uid, d in reads.users.items()}
    passing = set(users)
    members: set[str] = set()
    verdict: dict[str, Any] = {
        "account_enabled": None, "graph_filter": {"on": graph_filter is not None, "definition": graph_filter,
                                                  "passed": None},
        "email_filter": {"on": settings.email_filter_on, "passed": None, "reason": "off"},
        "group_filter": {"on": groups is not None, "passed": None, "groups": [], "path": []},
    }  # fmt: skip
    for uid in sorted(users):
        if uid in reads.existing_only:
            if graph_filter is not None:
                passing.discard(uid)  # known to exist (all_ids), not asked whether it is in scope
            continue
        if graph_filter is not None and not lookup.passes_filter(client, graph_filter, uid):
            passing.discard(uid)
        if groups is not None:
            held = lookup.memberships(client, uid)
            hit = sorted(g for g in held.transitive if g.lower() in listed)
            if hit:
                members.add(uid)
            if entra is not None and uid == entra.id:
                verdict["group_filter"]["passed"] = bool(hit)
                verdict["group_filter"]["groups"] = [{"id": g, "name": held.transitive[g].name} for g in hit]
                if hit:
                    path = lookup.group_path(client, hit[0], held)
                    verdict["group_filter"]["path"] = [{"id": g.id, "name": g.name} for g in path]
    if entra is not None:
        ev = email_verdict(entra.email, settings.scope())
        verdict["account_enabled"] = entra.account_enabled
        verdict["graph_filter"]["passed"] = True if graph_filter is None else entra.id in passing
        verdict["email_filter"] = {"on": ev.on, "passed": ev.passed, "reason": ev.reason,
                                   "excluded_by": ev.excluded_by, "included_by": ev.included_by}  # fmt: skip
        if groups is None:
            verdict["group_filter"]["passed"] = True
    snapshot = EntraSnapshot(
        users=MappingProxyType({uid: u for uid, u in users.items() if uid in passing}),
        soft_deleted_ids=frozenset(reads.soft_deleted),
        all_ids=frozenset(users) if graph_filter is not None else None,
        group_member_ids=frozenset(members) if groups is not None else None,
    )
    return snapshot, verdict


def _scoped(snapshot: EntraSnapshot, settings: SyncSettings, user: EntraUser) -> bool:
    return in_scope(user, settings.scope(), snapshot.group_member_ids)


def _user_public(u: EntraUser) -> dict[str, Any]:
    values = {f.name: (list(v) if isinstance(v, tuple) else v) for f, v in zip(fields.FIELDS, u.values, strict=True)}
    return {"id": u.id, "account_enabled": u.account_enabled, "user_type": u.user_type,
            "manager_id": u.manager_id, "mail": u.mail, "values": values}  # fmt: skip


def _person_public(p: PersonRecord) -> dict[str, Any]:
    values = {f.name: (list(v) if isinstance(v, tuple) else v) for f, v in zip(fields.FIELDS, p.values, strict=True)}
    return {"id": p.id, "entra_id": p.entra_id, "status": p.status.value, "source": p.source.value,
            "manager_id": p.manager_id, "manual_fields": sorted(p.manual_fields), "values": values}  # fmt: skip


def _match(entra: EntraUser | None, person: PersonRecord | None, out: Outcome, reads: _Reads) -> dict[str, Any]:
    conflicts = [conflict_public(c) for c in out.conflicts]
    others = sorted(
        uid for uid, d in reads.users.items()
        if entra is not None and uid != entra.id and email_key(reads.user(d).email) == email_key(entra.email)
    )  # fmt: skip
    if entra is None:
        kind, say = MatchKind.NO_USER, "No Entra user matches this person"
        if person is not None and person.entra_id:
            gone = "soft-deleted" if person.entra_id in reads.soft_deleted else "deleted for good"
            say = f"Linked to Entra user {person.entra_id}, which is {gone}"
    elif conflicts:
        kind = MatchKind.CONFLICT
        c = out.conflicts[0]
        if entra.id not in c.entra_ids:
            say = f"Conflict: Entra user {', '.join(c.entra_ids)} also claims this person's e-mail {c.email}"
        elif len(c.entra_ids) > 1:
            say = f"Conflict: {len(c.entra_ids)} Entra users claim {c.email}: {', '.join(c.entra_ids)}"
        else:
            say = f"Conflict: {c.email} belongs to person #{c.person_id}, linked to another Entra user"
    elif person is not None and person.entra_id == entra.id:
        kind, say = MatchKind.LINKED, f"Linked by Entra object id to person #{person.id}"
    elif person is not None:
        link = next((c.reason.value for c in out.changes if c.person_id == person.id), None)
        kind = MatchKind.RELINK if link == "relink" else MatchKind.FIRST_LINK
        by = (f"e-mail ({person.email})" if email_key(person.email) == email_key(entra.email)
              else f"employee id ({person.values[fields.INDEX['employee_id']]})")  # fmt: skip
        say = f"Would link to person #{person.id} by {by} on the next refresh"
    else:
        kind, say = MatchKind.NEW, "No person in the directory yet"
    return {"kind": kind.value, "summary": say, "conflicts": conflicts, "same_email_users": others}


def _next(out: Outcome, override_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The change the next refresh would propose, its field diffs (hand edits marked) and the parts kept
    back by overrides (rejected in review, with who and when)."""
    by_part = {(r["subject"], r["part"]): r for r in override_rows}
    diffs: list[dict[str, Any]] = []
    change = out.changes[0] if out.changes else None
    for d in change.diffs if change is not None else ():
        diffs.append({**diff_public(d), "overridden": False, "override": None})
    for c in out.overridden:
        for d in c.diffs or ():
            row = by_part.get((c.subject, d.field)) or by_part.get((c.subject, c.kind.value))
            diffs.append({**diff_public(d), "overridden": True, "override": _override(row)})
        if not c.diffs:
            row = by_part.get((c.subject, c.kind.value))
            diffs.append({"field": c.kind.value, "old": None, "new": None, "manual_edit": False,
                          "overridden": True, "override": _override(row)})  # fmt: skip
    if change is not None:
        action, summary = change.kind.value, f"{change.kind.value} ({change.reason.value})"
    elif out.overridden:
        action, summary = "none", "Nothing: every change is kept back by an override (rejected in review)"
    elif out.kept:
        action, summary = "kept", f"Kept: {out.kept[0].reason}"
    elif out.conflicts:
        action, summary = "none", "Nothing: the conflict is reported and the person left as is"
    elif out.matched:
        action, summary = "none", "Nothing: the person already matches Entra"
    else:
        action, summary = "none", "Nothing: not in scope and not in the directory"
    return {
        "action": action, "summary": summary, "change": change_public(change) if change is not None else None,
        "diffs": diffs, "kept": [k.reason for k in out.kept],
    }  # fmt: skip


def _override(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    at: Any = row.get("created_at")
    return {"id": row["id"], "part": row["part"], "value": row.get("label"), "by": row.get("created_by"),
            "at": at.isoformat() if at is not None and hasattr(at, "isoformat") else at}  # fmt: skip
