"""One paging style for every list (spec §7 "REST API", §11): an opaque cursor naming the last item
seen, and keyset queries after it.

A cursor is the list's name and the last item's sort key, encoded (base64url of JSON). Keyset paging
over keys that never change (ids, feed sequence numbers) is stable under concurrent inserts and
edits: an item is never shown twice and never skipped because someone else was added meanwhile,
which offset paging cannot promise. Clients treat cursors as opaque; a cursor of another list, or
one that was edited, is refused in words.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from entrasync.errors import ValidationError

MAX_LIMIT = 500


@dataclass(frozen=True, slots=True)
class CursorPage:
    """One page: its items and the cursor to pass as ``after`` for the next (None: that was the end)."""

    items: list[dict[str, Any]]
    next_cursor: str | None

    def public(self) -> dict[str, Any]:
        return {"items": self.items, "next_cursor": self.next_cursor}


def encode(kind: str, key: Sequence[int | str]) -> str:
    raw = orjson.dumps([kind, *key])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(kind: str, cursor: str | None, size: int = 1) -> list[Any] | None:
    """The key a cursor of list ``kind`` holds (``size`` parts), None for no cursor; else a ValidationError."""
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        data = None
    if (
        not isinstance(data, list)
        or len(data) != size + 1
        or data[0] != kind
        or not all(isinstance(k, int) and not isinstance(k, bool) and 0 <= k < 2**63 for k in data[1:])
    ):
        raise ValidationError({"after": "This cursor is not one this list gave out. Pass a next_cursor unchanged."})
    return list(data[1:])


def decode_id(kind: str, cursor: str | None) -> int | None:
    """The one integer key of a cursor (an id or a sequence number), or None."""
    key = decode(kind, cursor)
    return None if key is None else int(key[0])


def limit_of(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIMIT))


def page_of(kind: str, rows: list[dict[str, Any]], limit: int, key: str = "id") -> CursorPage:
    """A page from ``limit + 1`` fetched rows: the extra row only says there is more."""
    more = len(rows) > limit
    items = rows[:limit]
    return CursorPage(items, encode(kind, [int(items[-1][key])]) if more and items else None)


__all__ = ["MAX_LIMIT", "CursorPage", "decode", "decode_id", "encode", "limit_of", "page_of"]
