"""Planning only a delta round's neighbourhood when the directory was at rest (spec §9, 1% churn).

After a clean run (domain.rest) the full plan of the stored mirror proposes nothing. A delta round then
changes a few users C. Only people whose fate can depend on those users can get a change, so the
refresh loads and plans just them (:class:`Neighbourhood`), not all 100,000:

* the users of C (old and new e-mail), and the users who report to one of them (a manager leaving the
  scope leaves their reports without a manager);
* every user claiming an e-mail any of those claims (duplicates and collisions are decided by e-mail),
  and every user up the management chain of each (resolving a manager needs the manager's match);
* every person linked to one of those users or holding one of those e-mails, the person who manages
  each of them now (diffs label the current manager), and, again, those people's users and e-mails.

The closure alternates between the users (in memory) and the people (a query per round) until it adds
nothing. Planning it with the ordinary planner gives the full plan's changes, conflicts and hold: the
people left out are matched and unchanged, which :attr:`Plan.matched_outside` counts. The safety guard
judges against the whole directory (:class:`Census`). ``tests/domain/test_incremental.py`` checks the
equality against the full plan over random directories at rest and random delta rounds.

Not used (the refresh plans in full) when a rest invariant other than the soft-deleted users broke, when
the rest had standing rows (overridden, kept, conflicts), with the first link by employee id, or when the
round is large (:data:`MAX_SHARE`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from entrasync.domain import fields
from entrasync.domain.guard import Census
from entrasync.domain.model import EntraSnapshot, EntraUser, PersonRecord, Plan, ScopeSettings
from entrasync.domain.overrides import Override, Overrides
from entrasync.domain.planner import plan
from entrasync.domain.scope import scope_predicate

MAX_SHARE: Final = 0.05
"""A round touching more than this share of the users plans in full: past it, loading everyone in one
sweep is cheaper than closing the neighbourhood query by query."""
MAX_NEIGHBOURS: Final = 0.20  # a neighbourhood past this share of the users: plan in full instead


@dataclass(frozen=True, slots=True)
class Wanted:
    """The people the next query loads: by id, by Entra id, by e-mail key (casefolded)."""

    ids: frozenset[int]
    entra_ids: frozenset[str]
    emails: frozenset[str]


def _key(email: object) -> str:
    return str(email).casefold()


class _Claims:
    """E-mail key -> the users claiming it, built in one pass (lists only for keys claimed twice)."""

    __slots__ = ("first", "twice")

    def __init__(self, users: Mapping[str, EntraUser]) -> None:
        at = fields.EMAIL
        ids = list(users)
        keys = [str(u.values[at]).casefold() for u in users.values()]
        self.first: dict[str, str] = dict(zip(keys, ids, strict=True))
        self.twice: dict[str, list[str]] = {}
        if len(self.first) < len(keys):
            seen: set[str] = set()
            dup: set[str] = set()
            for k in keys:
                (dup if k in seen else seen).add(k)
            for k, uid in zip(keys, ids, strict=True):
                if k in dup:
                    self.twice.setdefault(k, []).append(uid)

    def get(self, key: str) -> list[str]:
        many = self.twice.get(key)
        if many is not None:
            return many
        one = self.first.get(key)
        return [one] if one is not None else []


@dataclass(slots=True)
class Neighbourhood:
    """The users and people a delta round can affect (see the module docstring)."""

    users: Mapping[str, EntraUser]  # the whole snapshot after the round
    user_ids: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)  # e-mail keys whose claimants are all in user_ids
    person_ids: set[int] = field(default_factory=set)
    people: dict[int, PersonRecord] = field(default_factory=dict)
    _asked_ids: set[int] = field(default_factory=set)
    _asked_entra: set[str] = field(default_factory=set)
    _asked_emails: set[str] = field(default_factory=set)
    _by_email: _Claims | None = None

    @staticmethod
    def around(
        users: Mapping[str, EntraUser],
        previous: Mapping[str, EntraUser | None],
        also: Iterable[str] = (),
        in_scope: Callable[[EntraUser], bool] | None = None,
    ) -> Neighbourhood:
        """The seeds of a round: ``previous`` maps each user the round touched to their version before it
        (None: new); ``also``: users whose soft-deleted state changed; ``in_scope``: the scope's test
        (domain.scope), given when the scope is the same before and after the round.

        A report's manager resolves through their manager's user alone: whether that user is in the
        scope and which person it matches (by link, else by e-mail). With ``in_scope``, the reports of a
        user who stays, stays in (or out of) the scope and keeps the e-mail key (a new title, a move)
        cannot change and are left out: about half of a 1% churn's reports at 100,000 users."""
        n = Neighbourhood(users)
        also = set(also)
        changed = set(previous) | also
        managers = {
            uid for uid in changed if uid in also or not _same_standing(previous.get(uid), users.get(uid), in_scope)
        }
        todo = [u.id for u in users.values() if u.manager_id in managers]
        todo += changed
        for old in previous.values():
            if old is not None:
                n._add_email(_key(old.values[fields.EMAIL]), todo)
        n._add_users(todo)
        return n

    def _add_email(self, key: str, todo: list[str]) -> None:
        """An e-mail key joins: every user claiming it joins too."""
        if key in self.emails:
            return
        self.emails.add(key)
        if self._by_email is None:
            self._by_email = _Claims(self.users)
        todo.extend(self._by_email.get(key))

    def _add_users(self, todo: list[str]) -> None:
        """Add users, closing over their e-mails and management chains."""
        users = self.users
        while todo:
            uid = todo.pop()
            if uid in self.user_ids:
                continue
            self.user_ids.add(uid)
            user = users.get(uid)
            if user is None:  # gone from Entra: the people linked to it are still wanted
                continue
            self._add_email(_key(user.values[fields.EMAIL]), todo)
            mid = user.manager_id
            if mid is not None and mid in users and mid not in self.user_ids:
                todo.append(mid)

    def wanted(self) -> Wanted | None:
        """What the next query should load, or None when the closure is complete."""
        ids = frozenset(self.person_ids - self.people.keys() - self._asked_ids)
        entra = frozenset(self.user_ids - self._asked_entra)
        emails = frozenset(self.emails - self._asked_emails)
        if not (ids or entra or emails):
            return None
        self._asked_ids |= ids
        self._asked_entra |= entra
        self._asked_emails |= emails
        return Wanted(ids, entra, emails)

    def add_people(self, people: Iterable[PersonRecord]) -> None:
        """People a query returned: their users, e-mails and current managers join the closure."""
        todo: list[str] = []
        for p in people:
            if p.id in self.people:
                continue
            self.people[p.id] = p
            self.person_ids.add(p.id)
            self._add_email(_key(p.values[fields.EMAIL]), todo)
            if p.manager_id is not None:
                self.person_ids.add(p.manager_id)
            if p.entra_id is not None:
                todo.append(p.entra_id)
        self._add_users(todo)

    def snapshot(self, full: EntraSnapshot) -> EntraSnapshot:
        """The snapshot restricted to the neighbourhood; every live user still ``exists``."""
        users = {uid: u for uid in sorted(self.user_ids) if (u := self.users.get(uid)) is not None}
        all_ids = full.all_ids if full.all_ids is not None else frozenset(self.users)
        return EntraSnapshot(users, full.soft_deleted_ids, all_ids, full.group_member_ids)


def _same_standing(old: EntraUser | None, new: EntraUser | None, in_scope: Callable[[EntraUser], bool] | None) -> bool:
    """Whether a manager's reports resolve to the same manager after the round as before it
    (domain.matching.manager_resolver: the manager in the scope, and matched by link or e-mail key)."""
    if in_scope is None or old is None or new is None:
        return False
    return _key(old.values[fields.EMAIL]) == _key(new.values[fields.EMAIL]) and in_scope(old) == in_scope(new)


def close(n: Neighbourhood, load: Callable[[Wanted], Sequence[PersonRecord]], limit: int) -> bool:
    """Run the closure with ``load`` answering each query; False when it grew past ``limit`` users."""
    while (want := n.wanted()) is not None:
        n.add_people(load(want))
        if len(n.user_ids) > limit or len(n.people) > limit:
            return False
    return True


def plan_around(
    full: EntraSnapshot,
    n: Neighbourhood,
    settings: ScopeSettings,
    census: Census,
    overrides: Collection[Override] | Overrides = (),
) -> Plan:
    """The plan of a closed neighbourhood: the full plan's changes, with the people outside counted as
    matched (:attr:`Plan.matched_outside`)."""
    sub = n.snapshot(full)
    result = plan(sub, sorted(n.people.values(), key=lambda p: p.id), settings, overrides, census=census)
    test = scope_predicate(settings, full.group_member_ids)
    in_scope = sum(1 for u in full.users.values() if test(u))
    result.matched_outside = in_scope - sum(1 for u in sub.users.values() if test(u))
    return result


def eligible(changed: int, users: int) -> bool:
    """Whether a round of ``changed`` users out of ``users`` is small enough to plan around."""
    return users > 0 and changed <= users * MAX_SHARE


def limit_for(users: int) -> int:
    return max(100, int(users * MAX_NEIGHBOURS))


__all__ = ["MAX_SHARE", "Census", "Neighbourhood", "Wanted", "close", "eligible", "limit_for", "plan_around"]
