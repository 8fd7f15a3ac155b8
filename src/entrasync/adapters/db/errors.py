"""Recognising database errors the services react to, without the services knowing SQLAlchemy."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError


def is_unique_violation(exc: BaseException) -> bool:
    """Whether ``exc`` is a unique (or primary key) constraint failing: another writer got there first."""
    return isinstance(exc, IntegrityError)
