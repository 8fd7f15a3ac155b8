"""A delta round on a directory at rest plans only the people it can affect (domain.incremental, §9).

Called inside the refresh's write transaction, after the lock: the rest, the inputs and the directory
version are the ones the plan is made against. Returns None whenever the round does not qualify; the
refresh then loads and plans everyone, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Sequence
from typing import Any

from entrasync.adapters.db.people_reads import Subset
from entrasync.adapters.graph.reader import FetchResult
from entrasync.domain.incremental import Neighbourhood, Wanted, close, eligible, limit_for, plan_around
from entrasync.domain.model import PersonRecord, Plan
from entrasync.domain.overrides import Override
from entrasync.domain.rest import Inputs, Rest, digest
from entrasync.domain.scope import scope_predicate
from entrasync.domain.settings import SyncSettings

log = logging.getLogger(__name__)

CHUNK = 2_000  # values bound per people query (SQLite allows 32,766; PostgreSQL 65,535)
_STANDING = ("overridden", "kept", "conflicts")


def _chunks(w: Wanted) -> Iterator[Subset]:
    """The query's keys, at most CHUNK bound values per statement."""
    items: list[tuple[str, Any]] = [
        *(("id", i) for i in sorted(w.ids)),
        *(("entra", e) for e in sorted(w.entra_ids)),
        *(("email", e) for e in sorted(w.emails)),
    ]
    for at in range(0, len(items), CHUNK):
        part = items[at : at + CHUNK]
        yield Subset(
            ids=frozenset(v for k, v in part if k == "id"),
            entra_ids=frozenset(v for k, v in part if k == "entra"),
            emails=frozenset(v for k, v in part if k == "email"),
        )


def _soft_changes(rest: Rest, broken: list[str], result: FetchResult) -> frozenset[str] | None:
    """The users whose soft-deleted state the round changed, or None when the stored mirror's list is not
    the one the rest was made with (then plan in full)."""
    if "soft_deleted" not in broken:
        return frozenset()
    stored = result.stored_soft_deleted
    if stored is None or digest(sorted(stored)) != rest.inputs.soft_deleted:
        return None
    broken.remove("soft_deleted")
    return stored ^ result.soft_deleted_ids


def plan(
    uow: Any,
    org_id: int,
    result: FetchResult,
    settings: SyncSettings,
    overrides: Collection[Override],
    rest: Rest | None,
    inputs: Inputs | None,
) -> tuple[Plan, int] | None:
    """The plan of the round's neighbourhood and how many people it planned, or None when the refresh
    must plan everyone."""
    previous = result.previous
    if rest is None or inputs is None or previous is None or result.mode != "delta":
        return None
    if any(rest.counts.get(k) for k in _STANDING) or settings.link_by != "email":
        return None  # standing rows are listed by the full plan; employee ids link across the directory
    broken = rest.broken(inputs)
    also = _soft_changes(rest, broken, result)
    if also is None or broken:
        return None
    users = result.snapshot.users
    if not eligible(len(previous) + len(also), len(users)):
        return None
    # The scope is the one of the rest (settings and group membership unchanged, or broken above).
    in_scope = scope_predicate(settings.scope(), result.snapshot.group_member_ids)
    n = Neighbourhood.around(users, previous, also, in_scope)

    def load(w: Wanted) -> Sequence[PersonRecord]:
        """The ids first (indexed lookups, cheap), then each person not loaded yet, once."""
        ids: set[int] = set()
        for part in _chunks(w):
            ids.update(uow.people.ids_of(org_id, part))
        fresh = sorted(ids - n.people.keys())
        out: list[PersonRecord] = []
        for at in range(0, len(fresh), CHUNK):
            part = Subset(ids=frozenset(fresh[at : at + CHUNK]))
            out += uow.people.load_records(org_id, share=users, only=part)
        return out

    odd = uow.people.unfolded_ids(org_id)  # matched by casefold, not found by lower(): always planned
    if odd:
        n.add_people(uow.people.load_records(org_id, share=users, only=Subset(ids=frozenset(odd))))
    if not close(n, load, limit_for(len(users))):
        log.info("org %s: the round reaches past %s users; planning everyone", org_id, limit_for(len(users)))
        return None
    log.info("org %s: %s users changed; planning %s people around them", org_id, len(previous), len(n.people))
    return plan_around(result.snapshot, n, settings.scope(), uow.people.census(org_id), overrides), len(n.people)
