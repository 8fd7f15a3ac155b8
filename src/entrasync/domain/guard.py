"""The safety guard (spec §4.6): a plan that would archive too many synced people, or every admin, is
held for review even in Auto-sync. Pure: it reads the plan and the directory and marks the plan."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from entrasync.domain.model import ADMIN_ROLES, ChangeKind, PersonRecord, Plan, ScopeSettings, Source, Status

MIN_GUARD_ARCHIVES: Final = 5
"""The safety guard only looks at the share once a plan archives at least this many people (§4.6)."""


def _percent(value: float) -> str:
    return f"{value:g}%"


@dataclass(frozen=True, slots=True)
class Census:
    """What the guard weighs a plan against: the active synced people and the active admins of the whole
    directory (a plan of a few people, domain.incremental, brings it from a count query)."""

    synced: int
    admin_ids: frozenset[int]

    @staticmethod
    def of(people: Iterable[PersonRecord]) -> Census:
        synced = 0
        admins: set[int] = set()
        for p in people:
            if p.status == Status.ARCHIVED:
                continue
            if p.source == Source.ENTRA:
                synced += 1
            if not ADMIN_ROLES.isdisjoint(p.roles):
                admins.add(p.id)
        return Census(synced, frozenset(admins))


def apply_guard(
    result: Plan, people: Sequence[PersonRecord], settings: ScopeSettings, census: Census | None = None
) -> None:
    """§4.6: hold a plan that archives too many synced people, or every admin, even in Auto-sync."""
    archive_ids = {c.person_id for c in result.changes if c.kind is ChangeKind.ARCHIVE}
    if not archive_ids:
        return
    whole = census if census is not None else Census.of(people)
    synced, admins = whole.synced, sorted(whole.admin_ids)
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
