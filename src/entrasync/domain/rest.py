"""When a refresh may say "nothing changed" without loading and planning everyone (spec §9, unchanged).

A plan is a pure function of (Entra, directory, settings, overrides, mapping). After a *clean* run the
directory is at rest: planning the same inputs again proposes no change. A clean run is one whose plan
had no changes, or one applied in full that had no conflicts (with conflicts, applying can unblock a
joiner, so the directory may move again: see ``test_applying_a_plan_converges``). The run records a
:class:`Rest`: digests of every input at that moment. A later refresh that finds

1. an empty delta round (Graph reports no user created, changed or deleted),
2. the same soft-deleted users (deleted items are read every run),
3. the same group membership when the group filter is on (membership is not in the users' delta),
4. the same directory version (every hand edit, role change and apply bumps it),
5. the same settings, 6. the same overrides, 7. the same mapping, 8. the same planning code,

knows the plan would be empty and its standing rows (overridden, kept) the same, and skips it. Each
invariant has a test that breaks it and sees the refresh plan in full (tests/services/test_unchanged.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from entrasync.domain import fields
from entrasync.domain.model import ChangeKind, Plan

# Bump when the planner's rules change, so a directory at rest under the old rules is planned again.
PLAN_RULES = "2026-12-01.2"  # .2: a rejected joiner leaves their reports with their current manager


def digest(value: Any) -> str:
    """A short, stable digest of JSON-able data (sets and tuples as sorted lists)."""

    def norm(v: Any) -> Any:
        if isinstance(v, set | frozenset):
            return sorted(v)
        if isinstance(v, tuple):
            return list(v)
        raise TypeError(type(v).__name__)

    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), default=norm, ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def mapping_digest(extra: Any = None) -> str:
    """The mapping the plan was made with: the field table (and, later, per-organisation mapping)."""
    return digest({"fields": [[f.name, f.graph] for f in fields.FIELDS], "extra": extra, "rules": PLAN_RULES})


def counts(p: Plan) -> dict[str, int]:
    """A run's counts: changes per kind, and the standing rows apart."""
    out = p.counts()
    out["overridden"] = len(p.overridden)
    out["kept"] = len(p.kept)
    out["conflicts"] = len(p.conflicts)
    out["matched"] = p.matched
    return out


def counts_at_rest(p: Plan, *, applied: bool) -> dict[str, int] | None:
    """The counts planning the same inputs again would give, or None when the directory may not be at
    rest (a held or pending plan, or conflicts an apply could unblock).

    Applied in full, every proposed change leaves its person matched (an archive leaves them out), and
    a change partly overridden leaves only its overridden fields, still listed as overridden.
    """
    if not applied:
        return counts(p) if not p.changes else None
    if p.held or p.conflicts:
        return None
    out = {k.value: 0 for k in ChangeKind}
    overridden = {c.subject for c in p.overridden}
    now_matched = sum(1 for c in p.changes if c.kind is not ChangeKind.ARCHIVE and c.subject not in overridden)
    out.update(overridden=len(p.overridden), kept=len(p.kept), conflicts=0, matched=p.matched + now_matched)
    return out


@dataclass(frozen=True, slots=True)
class Inputs:
    """Digests of a plan's inputs other than Entra's users (see the module docstring)."""

    version: int
    settings: str
    overrides: str
    mapping: str
    soft_deleted: str
    groups: str | None

    @staticmethod
    def of(
        *,
        version: int,
        settings: dict[str, Any],
        overrides: Iterable[Any],
        soft_deleted_ids: Iterable[str],
        group_member_ids: Iterable[str] | None,
        mapping: str | None = None,
    ) -> Inputs:
        return Inputs(
            version=version,
            settings=digest(settings),
            overrides=digest(sorted(overrides)),
            mapping=mapping or mapping_digest(),
            soft_deleted=digest(sorted(soft_deleted_ids)),
            groups=digest(sorted(group_member_ids)) if group_member_ids is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Rest:
    """What a clean run leaves: its id, the digests of its inputs, and the counts at rest."""

    run_id: int
    inputs: Inputs
    counts: dict[str, int] = field(default_factory=dict)
    users: int = 0  # Entra users the basis run read (what "people read" says of a run at rest)

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "inputs": asdict(self.inputs), "counts": dict(self.counts), "users": self.users}

    @staticmethod
    def from_json(doc: Any) -> Rest | None:
        """The stored rest, or None when absent or of another layout (then the refresh plans in full)."""
        try:
            counts = {str(k): int(v) for k, v in doc["counts"].items()}
            return Rest(int(doc["run_id"]), Inputs(**doc["inputs"]), counts, int(doc.get("users", 0)))
        except (TypeError, KeyError, ValueError):
            return None

    def broken(self, now: Inputs) -> list[str]:
        """The invariants that no longer hold (empty: the directory is still at rest)."""
        return [name for name in Inputs.__dataclass_fields__ if getattr(self.inputs, name) != getattr(now, name)]


__all__ = ["PLAN_RULES", "Inputs", "Rest", "counts", "counts_at_rest", "digest", "mapping_digest"]
