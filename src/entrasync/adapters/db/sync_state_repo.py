"""The delta cursor between refreshes (Entra mirror + delta link), stored compactly.

The mirror is every live user of the tenant as the last read saw it (``DeltaCursor.users``): a delta
round merges its changes into it. It is one row of Zstandard-compressed JSON lines (~8 MB at 100,000
users) in a table of its own (``sync_mirrors``), a line's users by columns, its shared values (job
titles, cities, …) in a table at its head; an unchanged round reads and rewrites only the small
``sync_state`` row beside it (delta link, rest, filter and mapping digest), and a churn round adds a
small patch of the users it touched (``sync_mirror_patches``, adapters.db.mirror_patches). Zstandard at level 1
compresses the ~50 MB of JSON several times faster than zlib did, which a churn refresh pays on every
run; a mirror written with zlib before still loads (bench/mirror_memory.py measures both ways).
"""

from __future__ import annotations

import io
import zlib
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from itertools import islice, repeat
from typing import Any

import orjson
import sqlalchemy as sa
import zstandard
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.mirror_patches import read_patch
from entrasync.adapters.graph.reader import DeltaCursor
from entrasync.domain import fields, shared_values
from entrasync.domain.model import EntraUser
from entrasync.domain.rest import Rest

# 5: JSON lines, Zstandard, a line's users by columns, shared values tabled per line; 4: the same by rows;
# 3: rows untabled; 2: zlib (all of them read)
_VERSION = 5
_ROWS = 4
_UNTABLED = 3
_new = EntraUser.__new__
_set = tuple(
    getattr(EntraUser, n).__set__ for n in ("id", "values", "mail", "account_enabled", "user_type", "manager_id")
)


_CUSTOM0 = fields.INDEX[fields.CUSTOM_FIELDS[0]]
_N_CUSTOM = len(fields.CUSTOM_FIELDS)
_NO_CUSTOM = (None,) * _N_CUSTOM


_CHUNK = 10_000  # users serialised (and parsed back) at a time
# Row positions written as an index into their line's table of distinct values: the user type and the
# fields people share (domain.shared_values). A line brings each job title, city, … once, so loading
# 100,000 users makes a few thousand strings instead of 800,000 (~50 MB less at 100,000, §9 peak).
_TABLED = (3, *sorted(5 + fields.INDEX[n] for n in shared_values.SHARED_FIELDS))
_COLUMN_TUPLES = tuple(at for i in fields.TUPLE_INDEXES if (at := 5 + i) not in _TABLED)  # lists, untabled


def dump(cursor: DeltaCursor) -> bytes:
    """The cursor as Zstandard-compressed JSON lines: a head (layout, delta link, soft-deleted users,
    field names), then one line per chunk of users, column by column (``[table, columns]``: the id
    column, mail, enabled, user type, manager, then each field's; the custom columns left off when
    nobody in the chunk holds one), serialised and compressed a chunk at a time. At 100,000 users
    neither the whole JSON (~50 MB) nor all the columns exist at once (§9 peak memory); by columns the
    blob is smaller (the emulator's 100,000 users: 7.8 MB against 8.7 MB by rows) and loading builds
    each user's values in one C-level zip."""
    soft = sorted(cursor.soft_deleted_ids)
    head = orjson.dumps({"v": _VERSION, "link": cursor.delta_link, "soft": soft, "fields": list(fields.FIELD_NAMES),
                         "tabled": list(_TABLED)})  # fmt: skip
    packer = zstandard.ZstdCompressor(level=1).compressobj()
    out = [packer.compress(head)]
    users = iter(cursor.users.values())
    while chunk := list(islice(users, _CHUNK)):
        cols: list[list[Any]] = [[u.id for u in chunk], [u.mail for u in chunk], [u.account_enabled for u in chunk],
                                 [u.user_type for u in chunk], [u.manager_id for u in chunk]]  # fmt: skip
        cols += map(list, zip(*(u.values for u in chunk), strict=True))
        if all(v is None for col in cols[5 + _CUSTOM0 :] for v in col):
            del cols[5 + _CUSTOM0 :]
        index: dict[Any, int] = {}  # a line's distinct values (str, None or a tuple) -> their position
        for at in _TABLED:
            col = cols[at]
            for i, v in enumerate(col):
                at_index = index.get(v)
                if at_index is None:
                    at_index = index[v] = len(index)
                col[i] = at_index
        out.append(packer.compress(b"\n" + orjson.dumps([list(index), cols])))
    out.append(packer.flush())
    return b"".join(out)


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_BEFORE = 2  # the single-document zlib layout of earlier releases


def _documents(blob: bytes) -> Iterator[Any]:
    """The head, then each chunk of rows, decoded one at a time (a line of the stream at a time: parsing
    the whole mirror at once cost several times its size in transient memory)."""
    if blob[:4] != _ZSTD_MAGIC:
        doc = orjson.loads(zlib.decompress(blob))
        rows = doc.pop("users", [])
        if doc.get("v") == _BEFORE:
            doc["v"] = _UNTABLED  # its rows are layout 3's
        yield doc
        yield rows
        return
    with io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(blob), buffer_size=1 << 20) as lines:
        for line in lines:
            yield orjson.loads(line)


def load(blob: bytes) -> DeltaCursor | None:
    """The stored cursor, or None if it is unreadable or from another layout (then a full read)."""
    users: dict[str, EntraUser] = {}
    try:
        docs = _documents(blob)
        head = next(docs)
        if not isinstance(head, dict) or head.get("v") not in (_VERSION, _ROWS, _UNTABLED):
            return None
        if tuple(head.get("fields", ())) != fields.FIELD_NAMES:
            return None
        tabled = tuple(head["tabled"]) if head["v"] != _UNTABLED else ()
        if head["v"] != _UNTABLED and tabled != _TABLED:
            return None
        add = _add_columns if head["v"] == _VERSION else _add_rows
        for doc in docs:
            add(users, doc, tabled)
        return DeltaCursor(delta_link=head["link"], users=users, soft_deleted_ids=set(head["soft"]))
    except (zlib.error, zstandard.ZstdError, orjson.JSONDecodeError, StopIteration, KeyError, TypeError, IndexError,
            ValueError):  # fmt: skip
        return None


def _add_columns(users: dict[str, EntraUser], doc: Any, tabled: tuple[int, ...]) -> None:
    """One line of layout 5: ``[table, columns]``."""
    table, cols = doc
    table = [_shared(x) for x in table]
    for at in tabled:
        cols[at] = [table[i] for i in cols[at]]
    for at in _COLUMN_TUPLES:
        if at < len(cols):
            cols[at] = [tuple(x) for x in cols[at]]
    vals = cols[5:]
    n_fields = len(fields.FIELDS)
    if len(vals) == _CUSTOM0:
        vals += [repeat(None)] * _N_CUSTOM
    elif len(vals) != n_fields:
        raise ValueError("a mirror line with another number of fields")
    ids = cols[0]
    if any(len(col) != len(ids) for col in (*cols[1:5], *vals) if col.__class__ is list):
        raise ValueError("a mirror line with columns of different lengths")
    # Built column by column, each slot set by map() in C: a third faster than a Python loop per user.
    made = list(map(_new, repeat(EntraUser, len(ids))))
    for put, col in zip(_set, (ids, zip(*vals, strict=False), *cols[1:5]), strict=True):
        deque(map(put, made, col), maxlen=0)  # the empty custom columns are endless repeats of None
    users.update(zip(ids, made, strict=True))


def _add_rows(users: dict[str, EntraUser], doc: Any, tabled: tuple[int, ...]) -> None:
    """One line of layouts 4 (``[table, rows]``) and 3 (``rows``): a row per user, ``[id, mail,
    enabled, user type, manager, *values]``."""
    s0, s1, s2, s3, s4, s5 = _set
    n_fields = len(fields.FIELDS)
    tuples = tuple(at for i in fields.TUPLE_INDEXES if (at := 5 + i) not in tabled)
    table: list[Any] = []
    if tabled:
        table, rows = doc
        table = [_shared(x) for x in table]
    else:
        rows = doc
    for row in rows:
        for at in tabled:
            row[at] = table[row[at]]
        u = _new(EntraUser)
        s0(u, row[0])
        for at in tuples:
            row[at] = tuple(row[at])
        values = tuple(row[5:])
        s1(u, values if len(values) == n_fields else values + _NO_CUSTOM)
        s2(u, row[1])
        s3(u, row[2])
        s4(u, row[3])
        s5(u, row[4])
        users[row[0]] = u


def apply_patch(users: dict[str, EntraUser], blob: bytes) -> set[str] | None:
    """Apply one stored patch (adapters.db.mirror_patches) to ``users`` in place: its removed users out,
    its rows in (read as layout 3's rows). The soft-deleted set it leaves, or None when it is unreadable
    (then the mirror is: a full read)."""
    patch = read_patch(blob)
    if patch is None:
        return None
    for uid in patch.gone:
        users.pop(uid, None)
    try:
        _add_rows(users, patch.rows, ())
    except (TypeError, IndexError, ValueError):
        return None
    return patch.soft


def _shared(value: Any) -> Any:
    """A table entry as users hold it: a department list as its tuple; shared across lines and with
    the reader's snapshot (domain.shared_values)."""
    if value.__class__ is str:
        return shared_values.TEXTS[value]
    if value.__class__ is list:
        if len(value) == 1 and value[0].__class__ is str:
            return shared_values.DEPARTMENTS[value[0]]
        return tuple(value)
    return value


def _rest_json(rest: Rest | None) -> str | None:
    return orjson.dumps(rest.to_json()).decode() if rest is not None else None


class SyncStateRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def read(self, org_id: int, graph_filter: str | None, mapping: str | None = None) -> DeltaCursor | None:
        """The cursor, if one was saved for the same Graph filter and mapping (``mapping``: its digest;
        None: the default mapping). A changed filter or mapping means a full read."""
        st = t.sync_state
        row = self.conn.execute(sa.select(st.c.graph_filter, st.c.mapping_digest).where(st.c.org_id == org_id)).first()
        if row is None or (row[0] or None) != graph_filter or (row[1] or None) != mapping:
            return None
        return self.mirror(org_id)

    def link(self, org_id: int, graph_filter: str | None, mapping: str | None = None) -> tuple[str | None, Rest | None]:
        """The delta link and the rest of the last clean run, without the mirror (None, None when no
        cursor was saved for this Graph filter and this mapping: ``mapping`` is its digest, None the default)."""
        st = t.sync_state
        row = self.conn.execute(
            sa.select(st.c.delta_link, st.c.graph_filter, st.c.rest, st.c.mapping_digest).where(st.c.org_id == org_id)
        ).first()
        if row is None or (row[1] or None) != graph_filter or (row[3] or None) != mapping:
            return None, None
        rest = Rest.from_json(orjson.loads(row[2])) if row[2] else None
        return row[0], rest

    def mirror(self, org_id: int) -> DeltaCursor | None:
        """The stored mirror with its delta link and its patches applied (None when absent or unreadable,
        a patch included: then a full read)."""
        st, sm, mp = t.sync_state, t.sync_mirrors, t.sync_mirror_patches
        row = self.conn.execute(
            sa.select(sm.c.cursor, st.c.delta_link).join(st, st.c.org_id == sm.c.org_id).where(sm.c.org_id == org_id)
        ).first()
        if row is None:
            return None
        cursor = load(row[0])
        if cursor is None:
            return None
        patches = self.conn.execute(sa.select(mp.c.patch).where(mp.c.org_id == org_id).order_by(mp.c.seq))
        for (patch,) in patches:
            soft = apply_patch(cursor.users, bytes(patch))
            if soft is None:
                return None
            cursor.soft_deleted_ids = soft
        if row[1]:
            cursor.delta_link = row[1]
        return cursor

    def patch_load(self, org_id: int) -> tuple[int, int]:
        """How many patches the mirror has, and how many users they hold (mirror_patches.should_patch)."""
        mp = t.sync_mirror_patches
        row = self.conn.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(mp.c.users), 0)).where(mp.c.org_id == org_id)
        ).one()
        return int(row[0]), int(row[1])

    def write_patch(
        self, org_id: int, patch: bytes, users: int, now: datetime, delta_link: str, rest: Rest | None = None
    ) -> None:
        """A delta round's patch (mirror_patches.dump_patch) beside the mirror, and the link it moved on to;
        the filter and the mapping stay (a round that merged into the mirror read with both)."""
        mp = t.sync_mirror_patches
        seq = self.conn.execute(sa.select(sa.func.coalesce(sa.func.max(mp.c.seq), 0)).where(mp.c.org_id == org_id))
        self.conn.execute(sa.insert(mp).values(org_id=org_id, seq=int(seq.scalar_one()) + 1, users=users, patch=patch))
        self.write_link(org_id, delta_link, now, rest)

    def write(
        self, org_id: int, blob: bytes | None, graph_filter: str | None, now: datetime, delta_link: str | None,
        rest: Rest | None = None, mapping: str | None = None,
    ) -> None:  # fmt: skip
        """Replace the stored cursor (``blob`` from :func:`dump`); None forgets it. ``rest``: what a clean
        run leaves (None: the next refresh plans in full)."""
        st = t.sync_state
        self.forget(org_id)
        if blob is not None:
            self.conn.execute(sa.insert(t.sync_mirrors).values(org_id=org_id, cursor=blob))
            self.conn.execute(
                sa.insert(st).values(
                    org_id=org_id,
                    delta_link=delta_link,
                    graph_filter=graph_filter,
                    updated_at=now,
                    rest=_rest_json(rest),
                    mapping_digest=mapping,
                )
            )

    def write_link(self, org_id: int, delta_link: str, now: datetime, rest: Rest | bool | None = False) -> None:
        """An unchanged delta round: the mirror stays, only the link moves on (and ``rest``, unless False)."""
        st = t.sync_state
        values: dict[str, object] = {"delta_link": delta_link, "updated_at": now}
        if rest is not False:
            values["rest"] = _rest_json(rest if isinstance(rest, Rest) else None)
        self.conn.execute(sa.update(st).where(st.c.org_id == org_id).values(**values))

    def forget(self, org_id: int) -> None:
        self.conn.execute(sa.delete(t.sync_state).where(t.sync_state.c.org_id == org_id))
        self.conn.execute(sa.delete(t.sync_mirror_patches).where(t.sync_mirror_patches.c.org_id == org_id))
        self.conn.execute(sa.delete(t.sync_mirrors).where(t.sync_mirrors.c.org_id == org_id))
