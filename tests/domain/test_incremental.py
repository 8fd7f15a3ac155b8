"""Planning a delta round's neighbourhood (domain.incremental) gives the full plan, over random directories
at rest and random rounds: changed fields and e-mails (collisions and duplicates included), moves,
disables, deletes (soft and hard), restores, joiners and managers leaving the scope; a user changed in one
attribute only (a new title, enabled or disabled) too, where the reports of a manager who keeps their
standing are left out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from tests.domain.test_planner import EMAILS, IDS, _txt, apply_plan, directories, entra_users, person_for

from entrasync.domain import rest
from entrasync.domain.guard import Census
from entrasync.domain.incremental import Neighbourhood, Wanted, close, plan_around
from entrasync.domain.model import EntraSnapshot, EntraUser, PersonRecord, Plan, ScopeSettings
from entrasync.domain.planner import plan
from entrasync.domain.scope import scope_predicate

NEW_IDS = ["n1", "n2"]


def _user(draw: st.DrawFn, uid: str) -> EntraUser:
    mail = draw(st.sampled_from(EMAILS))
    return EntraUser.of(
        uid,
        user_principal_name=f"{uid}@t.onmicrosoft.com",
        mail=draw(st.sampled_from([mail, mail.upper(), None])),
        display_name=draw(_txt),
        job_title=draw(_txt),
        department=draw(st.sampled_from([None, "Sales", "Ops"])),
        account_enabled=draw(st.booleans()),
        manager_id=draw(st.sampled_from([None, *IDS, *NEW_IDS])),
    )


def _at_rest(snapshot: EntraSnapshot, people: list[PersonRecord], s: ScopeSettings) -> list[PersonRecord] | None:
    """The directory after refreshing until nothing changes, or None when that rest is not clean."""
    for _ in range(6):
        p = plan(snapshot, people, s)
        if not p.changes:
            return people if not (p.conflicts or p.kept or p.overridden) else None
        people = apply_plan(people, p)
    return None


def _loader(people: Sequence[PersonRecord]) -> Any:
    """What the people query answers (adapters.db.people_reads.Subset): by id, Entra id or e-mail key."""

    def load(w: Wanted) -> list[PersonRecord]:
        return [
            p for p in people
            if p.id in w.ids or (p.entra_id is not None and p.entra_id in w.entra_ids)
            or p.email.casefold() in w.emails
        ]  # fmt: skip

    return load


@st.composite
def rounds(draw: st.DrawFn) -> tuple[EntraSnapshot, EntraSnapshot, list[PersonRecord], ScopeSettings]:
    users = {u.id: u for u in draw(entra_users())}
    dead = [i for i in [*IDS, "dead1", "dead2"] if i not in users]
    soft = frozenset(draw(st.lists(st.sampled_from(dead), max_size=2))) if dead else frozenset()
    group_on = draw(st.booleans())
    members = frozenset(draw(st.lists(st.sampled_from([*IDS, *NEW_IDS]), max_size=10))) if group_on else None
    s = ScopeSettings(
        email_filter=draw(st.booleans()),
        email_include=tuple(draw(st.lists(st.sampled_from(["x.com", "y", "Z.ORG"]), max_size=2))),
        group_filter=group_on,
        guard_percent=draw(st.sampled_from([0.0, 10.0, 50.0, 100.0])),
        create_only=draw(st.sampled_from([frozenset(), frozenset({"job_title"})])),
        keep_manual=draw(st.booleans()),
    )
    old = EntraSnapshot(users=dict(users), soft_deleted_ids=soft, group_member_ids=members)
    people = draw(directories())
    if draw(st.booleans()):  # a directory a first sync wrote: everyone in it linked
        people = [person_for(u, 100 + i) for i, u in enumerate(sorted(users.values(), key=lambda u: u.id))]
    settled = _at_rest(old, people, s)
    assume(settled is not None)
    assert settled is not None
    # The round: a few users change, are deleted (soft or for good), come back, or join.
    new_users = dict(users)
    new_soft = set(soft)
    for uid in draw(st.lists(st.sampled_from([*IDS, *NEW_IDS]), unique=True, min_size=1, max_size=4)):
        what = draw(st.sampled_from(["change", "change", "retitle", "toggle", "delete", "soft delete"]))
        if what in ("retitle", "toggle") and uid in new_users:  # the same user, one attribute changed
            was = new_users[uid]
            new_users[uid] = (was.with_(job_title=draw(_txt)) if what == "retitle"
                              else was.with_(account_enabled=not was.account_enabled))  # fmt: skip
        elif what in ("change", "retitle", "toggle") or uid not in new_users:
            new_users[uid] = _user(draw, uid)
            new_soft.discard(uid)
        else:
            del new_users[uid]
            if what == "soft delete":
                new_soft.add(uid)
    new = EntraSnapshot(users=new_users, soft_deleted_ids=frozenset(new_soft), group_member_ids=members)
    return old, new, settled, s


def _same(full: Plan, inc: Plan) -> None:
    assert inc.changes == full.changes
    assert inc.conflicts == full.conflicts
    assert inc.kept == full.kept and inc.overridden == full.overridden
    assert (inc.held, inc.hold_reason) == (full.held, full.hold_reason)
    assert rest.counts(inc) == rest.counts(full)
    assert rest.counts_at_rest(inc, applied=True) == rest.counts_at_rest(full, applied=True)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(rounds())
def test_the_neighbourhood_plans_what_the_full_plan_does(
    case: tuple[EntraSnapshot, EntraSnapshot, list[PersonRecord], ScopeSettings],
) -> None:
    old, new, people, s = case
    changed = {uid for uid in old.users.keys() | new.users.keys() if old.users.get(uid) != new.users.get(uid)}
    previous = {uid: old.users.get(uid) for uid in changed}
    full = plan(new, people, s)
    # without the scope's test (every changed user's reports), and with it, as the refresh asks
    for in_scope in (None, scope_predicate(s, new.group_member_ids)):
        n = Neighbourhood.around(new.users, previous, also=old.soft_deleted_ids ^ new.soft_deleted_ids,
                                 in_scope=in_scope)  # fmt: skip
        assert close(n, _loader(people), limit=1000)
        _same(full, plan_around(new, n, s, Census.of(people)))


def _chain(n: int) -> tuple[list[EntraUser], list[PersonRecord]]:
    """A line of managers u0 <- u1 <- ... each managing the next, synced and at rest."""
    users = [EntraUser.of(f"u{i}", mail=f"u{i}@x.com", manager_id=f"u{i - 1}" if i else None) for i in range(n)]
    people = [person_for(u, 100 + i, manager_id=99 + i if i else None) for i, u in enumerate(users)]
    return users, people


def test_a_title_change_loads_its_manager_chain_and_not_the_rest() -> None:
    users, people = _chain(50)
    extra = [EntraUser.of(f"x{i}", mail=f"x{i}@x.com", manager_id="u0") for i in range(200)]
    extra_people = [person_for(u, 1000 + i, manager_id=100) for i, u in enumerate(extra)]
    everyone = people + extra_people
    old = EntraSnapshot(users={u.id: u for u in users + extra})
    assert not plan(old, everyone, ScopeSettings()).changes
    changed = users[10].with_(job_title="Boss")
    new = EntraSnapshot(users={**old.users, changed.id: changed})
    n = Neighbourhood.around(new.users, {changed.id: users[10]})
    queries: list[Wanted] = []

    def load(w: Wanted) -> list[PersonRecord]:
        queries.append(w)
        return _loader(everyone)(w)

    assert close(n, load, limit=1000)
    # u10, its report u11, and the chain above it: u0..u11, never the 200 people under u0.
    assert n.user_ids == {f"u{i}" for i in range(12)}
    assert len(queries) <= 3
    inc = plan_around(new, n, ScopeSettings(), Census.of(everyone))
    _same(plan(new, everyone, ScopeSettings()), inc)
    assert [c.entra_id for c in inc.changes] == ["u10"] and inc.matched == 249
    # With the scope's test: u10 keeps its e-mail and stays in scope, so u11 still reports to u10's
    # person and is left out.
    scoped = Neighbourhood.around(new.users, {changed.id: users[10]}, in_scope=scope_predicate(ScopeSettings(), None))
    assert close(scoped, _loader(everyone), limit=1000)
    assert scoped.user_ids == {f"u{i}" for i in range(11)}
    _same(plan(new, everyone, ScopeSettings()), plan_around(new, scoped, ScopeSettings(), Census.of(everyone)))
    # A new e-mail, or leaving the scope, brings the report back.
    for moved in (users[10].with_(mail="boss@x.com"), users[10].with_(account_enabled=False)):
        new = EntraSnapshot(users={**old.users, moved.id: moved})
        again = Neighbourhood.around(new.users, {moved.id: users[10]}, in_scope=scope_predicate(ScopeSettings(), None))
        assert close(again, _loader(everyone), limit=1000) and "u11" in again.user_ids
        _same(plan(new, everyone, ScopeSettings()), plan_around(new, again, ScopeSettings(), Census.of(everyone)))


def test_a_round_past_the_limit_says_so() -> None:
    users, people = _chain(30)
    old = {u.id: u for u in users}
    n = Neighbourhood.around(old, {"u29": users[29]})
    assert not close(n, _loader(people), limit=5)


def test_the_guard_weighs_the_whole_directory() -> None:
    """Archiving 5 of 200 synced people is 2.5%: held at 2%, not at 10%, though the plan holds 5 people."""
    users = [EntraUser.of(f"u{i}", mail=f"u{i}@x.com") for i in range(200)]
    people = [person_for(u, 100 + i) for i, u in enumerate(users)]
    old = {u.id: u for u in users}
    new = {k: v for k, v in old.items() if k not in {f"u{i}" for i in range(5)}}
    for guard, held in ((2.0, True), (10.0, False)):
        s = ScopeSettings(guard_percent=guard)
        n = Neighbourhood.around(new, {f"u{i}": old[f"u{i}"] for i in range(5)})
        assert close(n, _loader(people), limit=1000)
        inc = plan_around(EntraSnapshot(users=new), n, s, Census.of(people))
        assert len(n.people) == 5 and inc.held is held
        _same(plan(EntraSnapshot(users=new), people, s), inc)
