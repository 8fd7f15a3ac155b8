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
    row = conn.execute(
        sa.select(t.sync_state.c.cursor, t.sync_state.c.graph_filter).where(t.sync_state.c.org_id == org_id)
    ).first()
    if row is None or row[0] is None or (row[1] or None) != graph_filter:
        return None
    return load(row[0])


def write(
    conn: Connection, org_id: int, cursor: DeltaCursor | bytes | None, graph_filter: str | None, now: datetime
) -> None:
    """Replace the stored cursor; ``cursor`` may already be :func:`dump`-ed (bytes)."""
    conn.execute(sa.delete(t.sync_state).where(t.sync_state.c.org_id == org_id))
    if cursor is not None:
        blob = cursor if isinstance(cursor, bytes) else dump(cursor)
        conn.execute(
            sa.insert(t.sync_state).values(org_id=org_id, cursor=blob, graph_filter=graph_filter, updated_at=now)
        )
