"""Case-insensitive "contains" for search boxes, right for non-ASCII names on every backend.

SQLite's built-in lower() folds ASCII only, so "Ñandú" would not find "ÑANDÚ". SQLite connections get a
Python ``py_lower`` (adapters.db.engine); it costs a Python call per row, so it is used only when the
search term itself is not ASCII (an ASCII term matches the same rows either way).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction


class unicode_lower(GenericFunction[str]):
    type = sa.String()
    name = "unicode_lower"
    inherit_cache = True


@compiles(unicode_lower)
def _lower_default(element: Any, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(unicode_lower, "sqlite")
def _lower_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"py_lower({compiler.process(element.clauses, **kw)})"


def like_term(search: str) -> str:
    """A LIKE pattern (escape character backslash) for text containing ``search``, lower-cased."""
    cleaned = search.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{cleaned}%"


def contains(column: Any, search: str, *, folded: bool = False) -> Any:
    """``column`` contains ``search``, ignoring case; ``folded`` when the column is stored lower-cased.

    A term with a NUL character matches nothing (nothing stored holds one, and SQLite would cut the
    pattern at it and match everything).
    """
    if "\x00" in search:
        return sa.false()
    if folded:
        return column.like(like_term(search), escape="\\")
    fold = sa.func.lower if search.isascii() else unicode_lower
    return fold(column).like(like_term(search), escape="\\")
