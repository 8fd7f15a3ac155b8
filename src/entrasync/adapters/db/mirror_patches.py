"""A delta round's changes to the stored mirror, written beside it instead of rewriting it (issue 13, 1%
churn under a second).

Re-encoding and recompressing the mirror of 100,000 users costs a churn round ~0.5 s although it
changed 1,000 of them. A round that merged into the stored mirror therefore writes a **patch**: the
users it touched as they are now (rows of the mirror's untabled layout), the ones it removed, and the
soft-deleted set, one small row of ``sync_mirror_patches``. Loading applies the patches in order on the
base. The service writes the whole mirror again (dropping the patches) when the patches would hold more
than :data:`MAX_SHARE` of the users or number :data:`MAX_PATCHES`, on every full read, and whenever
the filter or mapping changed (a full read anyway).

Order: a patch puts the users it removes first out and then its rows in, new ones at the end, as the
round's merge did; a user removed and restored within one round keeps its place instead of moving to
the end. Nothing depends on the order of the users: the planner decides each user from indexes
(domain.matching), and ``tests/db/test_mirror_patches.py`` checks the loaded users equal the merged
ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, NamedTuple

import orjson
import zstandard

from entrasync.domain import fields
from entrasync.domain.model import EntraUser

_VERSION: Final = 1
MAX_SHARE: Final = 0.10
MAX_PATCHES: Final = 64
MIN_USERS: Final = 100  # a small tenant's patches may hold this many users whatever its size


def should_patch(stored: tuple[int, int], touched: int, users: int) -> bool:
    """Whether a round touching ``touched`` of ``users`` goes in a patch, given the patches ``stored``
    (how many, how many users they hold), rather than in a whole new mirror."""
    count, held = stored
    return count < MAX_PATCHES and held + touched <= max(MIN_USERS, users * MAX_SHARE)


def dump_patch(users: Mapping[str, EntraUser], touched: Iterable[str], soft: set[str]) -> tuple[bytes, int]:
    """The patch of a round (``touched``: the users it touched, in the order it first saw them) and how
    many users it holds."""
    rows: list[list[Any]] = []
    gone: list[str] = []
    for uid in touched:
        u = users.get(uid)
        if u is None:
            gone.append(uid)
        else:
            rows.append([u.id, u.mail, u.account_enabled, u.user_type, u.manager_id, *u.values])
    doc = {"v": _VERSION, "fields": list(fields.FIELD_NAMES), "soft": sorted(soft), "gone": gone, "rows": rows}
    return zstandard.ZstdCompressor(level=1).compress(orjson.dumps(doc)), len(rows) + len(gone)


class Patch(NamedTuple):
    """A patch as stored: the soft-deleted set after its round, the users it removed, and the rows of
    the users it wrote (``[id, mail, enabled, user type, manager, *values]``, the mirror's row layout,
    read by sync_state_repo)."""

    soft: set[str]
    gone: list[str]
    rows: list[list[Any]]


def read_patch(blob: bytes) -> Patch | None:
    """The stored patch, or None when it is unreadable or of another layout (then the mirror is
    unreadable: a full read)."""
    try:
        doc = orjson.loads(zstandard.ZstdDecompressor().decompress(blob))
        if doc.get("v") != _VERSION or tuple(doc.get("fields", ())) != fields.FIELD_NAMES:
            return None
        patch = Patch(set(doc["soft"]), list(doc["gone"]), list(doc["rows"]))
    except (zstandard.ZstdError, orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None
    if any(not isinstance(r, list) or len(r) != 5 + len(fields.FIELDS) for r in patch.rows):
        return None
    return patch
