"""Who is in scope of the sync (spec §3).

A user is in scope when their account is enabled AND they match every filter that is on. The Graph
filter is applied by Graph itself (users it excludes never reach the snapshot), so only the e-mail
and group filters are evaluated here. Pure functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from entrasync.domain.fields import EMAIL
from entrasync.domain.model import EntraUser, ScopeSettings

__all__ = [
    "email_key",
    "email_matches",
    "in_scope",
    "normalise_email_terms",
    "scope_predicate",
]


def email_key(email: str) -> str:
    """The form e-mails are compared in: e-mail is unique in the org case-insensitively (§1)."""
    return email.casefold()


def normalise_email_terms(raw: str | Iterable[str]) -> tuple[str, ...]:
    """Turn the comma-separated filter fields into clean terms.

    Accepts the raw text of a field or an iterable of items (each may itself hold commas): terms are
    trimmed and case-folded, empties dropped and duplicates removed keeping the first occurrence, so
    the stored setting is canonical and the comparison is case-insensitive.
    """
    items = [raw] if isinstance(raw, str) else list(raw)
    seen: dict[str, None] = {}
    for item in items:
        for part in item.split(","):
            term = part.strip().casefold()
            if term:
                seen.setdefault(term, None)
    return tuple(seen)


def _matcher(include: Sequence[str], exclude: Sequence[str]) -> Callable[[str], bool]:
    """Compile the include/exclude lists once; the planner calls the result for every user."""
    inc = normalise_email_terms(include)
    exc = normalise_email_terms(exclude)

    def matches(email: str) -> bool:
        key = email.casefold()
        for term in exc:
            if term in key:
                return False  # exclude wins over include
        if not inc:
            return True  # an empty include list includes all
        return any(term in key for term in inc)

    return matches


def email_matches(email: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """The e-mail filter: case-insensitive substrings; exclude wins; an empty include list = all."""
    return _matcher(include, exclude)(email)


def scope_predicate(settings: ScopeSettings, group_member_ids: frozenset[str] | None) -> Callable[[EntraUser], bool]:
    """Build the §3 scope test once, so checking 100k users costs one call each.

    With the group filter on, ``group_member_ids`` is the transitive union of the listed groups'
    user members; ``None`` there (membership unknown) puts nobody in scope, never everybody.
    """
    email_on = settings.email_filter
    matches = _matcher(settings.email_include, settings.email_exclude) if email_on else None
    group_on = settings.group_filter
    members: frozenset[str] = group_member_ids if group_member_ids is not None else frozenset()

    def test(user: EntraUser) -> bool:
        if not user.account_enabled:
            return False
        if matches is not None and not matches(user.values[EMAIL]):
            return False
        return not group_on or user.id in members

    return test


def in_scope(user: EntraUser, settings: ScopeSettings, group_member_ids: frozenset[str] | None) -> bool:
    """Whether one user is in scope: enabled AND e-mail filter (if on) AND in a listed group (if on)."""
    return scope_predicate(settings, group_member_ids)(user)
