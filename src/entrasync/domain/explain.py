"""Explain one person or one Entra user (spec §12, like Entra's "Provision on demand"): pure parts.

The verdicts reuse the scope rules of domain.scope (the same term normalisation, exclude wins, an
empty include list includes all) and the outcome is the planner's own: :func:`outcome` runs
:func:`entrasync.domain.planner.plan` on the few users and people concerned and keeps that person's
change, overridden part, conflict or kept entry. Nothing here re-implements a sync rule.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from entrasync.domain.model import Change, Conflict, EntraSnapshot, Kept, PersonRecord, ScopeSettings
from entrasync.domain.overrides import Override
from entrasync.domain.planner import plan
from entrasync.domain.scope import normalise_email_terms

__all__ = ["EmailVerdict", "MatchKind", "Outcome", "email_verdict", "outcome"]


@dataclass(frozen=True, slots=True)
class EmailVerdict:
    """The e-mail filter for one e-mail: which exclude term matched (it wins), else which include term
    matched (None with an empty include list: everyone is included)."""

    on: bool
    passed: bool
    excluded_by: str | None = None
    included_by: str | None = None

    @property
    def reason(self) -> str:
        if not self.on:
            return "off"
        if self.excluded_by is not None:
            return f"excluded: the e-mail contains {self.excluded_by!r} (an exclude rule)"
        if self.included_by is not None:
            return f"included: the e-mail contains {self.included_by!r} (an include rule)"
        if self.passed:
            return "included: the include list is empty, so every e-mail not excluded is included"
        return "excluded: the e-mail contains none of the include rules"


def email_verdict(email: str, settings: ScopeSettings) -> EmailVerdict:
    if not settings.email_filter:
        return EmailVerdict(on=False, passed=True)
    key = email.casefold()
    for term in normalise_email_terms(settings.email_exclude):
        if term in key:
            return EmailVerdict(on=True, passed=False, excluded_by=term)
    include = normalise_email_terms(settings.email_include)
    if not include:
        return EmailVerdict(on=True, passed=True)
    for term in include:
        if term in key:
            return EmailVerdict(on=True, passed=True, included_by=term)
    return EmailVerdict(on=True, passed=False)


class MatchKind(StrEnum):
    """How the user and the person go together (§4.3)."""

    LINKED = "linked"  # by Entra object id
    FIRST_LINK = "first_link"  # an unlinked person with the user's e-mail: linked by the next refresh
    RELINK = "relink"  # a person linked to a deleted account, with the user's e-mail
    CONFLICT = "conflict"  # two users claim one e-mail, or the e-mail's person is linked to another user
    NEW = "new"  # no person yet: a joiner when in scope
    NO_USER = "no_user"  # a person matching no Entra user


@dataclass(slots=True)
class Outcome:
    """What the planner would do to this person (or user), from a plan of just the people concerned."""

    changes: list[Change] = field(default_factory=list)
    overridden: list[Change] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)
    matched: bool = False  # linked and nothing would change


def outcome(
    snapshot: EntraSnapshot,
    people: Sequence[PersonRecord],
    settings: ScopeSettings,
    overrides: Collection[Override],
    *,
    user_id: str | None,
    person_id: int | None,
) -> Outcome:
    """Plan ``snapshot`` x ``people`` and keep what concerns this user and person. The safety guard is
    not a verdict on one person (it weighs the whole directory): the plan's hold is ignored here."""
    result = plan(snapshot, people, settings, overrides)
    subjects = {f"p:{person_id}"} if person_id is not None else set()
    if user_id is not None:
        subjects.add(f"e:{user_id}")

    def mine(c: Change) -> bool:
        return c.subject in subjects or (user_id is not None and c.entra_id == user_id)

    return Outcome(
        changes=[c for c in result.changes if mine(c)],
        overridden=[c for c in result.overridden if mine(c)],
        conflicts=[
            c
            for c in result.conflicts
            if (user_id is not None and user_id in c.entra_ids) or (person_id is not None and c.person_id == person_id)
        ],
        kept=[k for k in result.kept if k.person_id == person_id],
        matched=person_id is not None and person_id in result.matched_ids,
    )
