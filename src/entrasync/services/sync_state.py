"""Persisting the delta cursor (Entra mirror + delta link) between refreshes, compactly."""

from __future__ import annotations

import zlib
from datetime import datetime

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection

from entrasync.adapters.db import tables as t
from entrasync.adapters.graph.reader import DeltaCursor
from entrasync.domain.model import EntraUser
from entrasync.services.people import slots_factory

_FIELDS = EntraUser.__slots__
_VERSION = 1
_USER_FACTORY = slots_factory(EntraUser, _FIELDS)


def dump(cursor: DeltaCursor) -> bytes:
    rows = [[getattr(u, f) for f in _FIELDS] for u in cursor.users.values()]
    doc = {
        "v": _VERSION,
        "link": cursor.delta_link,
        "soft": sorted(cursor.soft_deleted_ids),
        "fields": list(_FIELDS),
        "users": rows,
    }
    return zlib.compress(orjson.dumps(doc), 1)


def load(blob: bytes) -> DeltaCursor | None:
    """The stored cursor, or None if it is unreadable or from another layout (then a full read)."""
    try:
        doc = orjson.loads(zlib.decompress(blob))
    except (zlib.error, orjson.JSONDecodeError):
        return None
    if doc.get("v") != _VERSION or tuple(doc.get("fields", ())) != tuple(_FIELDS):
        return None
    make = _USER_FACTORY
    users = {row[0]: make(*row) for row in doc["users"]}
    return DeltaCursor(delta_link=doc["link"], users=users, soft_deleted_ids=set(doc["soft"]))


def read(conn: Connection, org_id: int, graph_filter: str | None) -> DeltaCursor | None:
    """The cursor, if one was saved for the same Graph filter (a changed filter means a full read)."""
    st = t.sync_state
    row = conn.execute(sa.select(st.c.cursor, st.c.graph_filter, st.c.delta_link).where(st.c.org_id == org_id)).first()
    if row is None or row[0] is None or (row[1] or None) != graph_filter:
        return None
    cursor = load(row[0])
    if cursor is not None and row[2]:
        cursor.delta_link = row[2]
    return cursor


def write(
    conn: Connection,
    org_id: int,
    cursor: DeltaCursor | bytes | None,
    graph_filter: str | None,
    now: datetime,
    *,
    delta_link: str | None = None,
) -> None:
    """Replace the stored cursor; ``cursor`` may already be :func:`dump`-ed (bytes), then pass its link."""
    conn.execute(sa.delete(t.sync_state).where(t.sync_state.c.org_id == org_id))
    if cursor is not None:
        blob = cursor if isinstance(cursor, bytes) else dump(cursor)
        link = delta_link if isinstance(cursor, bytes) else cursor.delta_link
        conn.execute(
            sa.insert(t.sync_state).values(
                org_id=org_id, cursor=blob, delta_link=link, graph_filter=graph_filter, updated_at=now
            )
        )


def write_link(conn: Connection, org_id: int, delta_link: str, now: datetime) -> None:
    """An unchanged delta round: the mirror stays, only the link moves on."""
    conn.execute(
        sa.update(t.sync_state).where(t.sync_state.c.org_id == org_id).values(delta_link=delta_link, updated_at=now)
    )
