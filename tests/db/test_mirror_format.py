"""The stored mirror of Entra (adapters.db.sync_state_repo): Zstandard now, zlib before, both loading to
the same users; anything else unreadable (then the refresh reads everything again, never plans from it)."""

from __future__ import annotations

import zlib

import orjson
import pytest
import zstandard

from entrasync.adapters.db import sync_state_repo
from entrasync.adapters.db.sync_state_repo import dump, load
from entrasync.adapters.graph.reader import DeltaCursor
from entrasync.domain.model import EntraUser


def _cursor() -> DeltaCursor:
    users = {
        "u1": EntraUser.of("u1", mail="ann@contoso.com", department="Sales", account_enabled=True, manager_id="u2"),
        "u2": EntraUser.of("u2", mail="bob@contoso.com", job_title="Chair", business_phones=("+1 555", "+1 556")),
    }
    return DeltaCursor("https://graph.test/v1.0/users/delta?$deltatoken=D1", users, {"gone"})


def test_a_mirror_is_zstandard_and_loads_back_the_same_users(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sync_state_repo, "_CHUNK", 1)  # a line per user: all of them read back
    cursor = _cursor()
    blob = dump(cursor)
    assert blob[:4] == b"\x28\xb5\x2f\xfd"  # a Zstandard frame
    back = load(blob)
    assert back is not None
    assert back.users == cursor.users and back.soft_deleted_ids == {"gone"} and back.delta_link == cursor.delta_link
    assert load(dump(DeltaCursor("link", {}, set()))) == DeltaCursor("link", {}, set())


def test_a_mirror_written_with_zlib_before_still_loads() -> None:
    """Layout 2: one JSON document (head and users together), zlib-compressed."""
    cursor = _cursor()
    lines = zstandard.ZstdDecompressor().decompressobj().decompress(dump(cursor)).split(b"\n")
    doc = {**orjson.loads(lines[0]), "v": 2, "users": [row for line in lines[1:] for row in orjson.loads(line)]}
    back = load(zlib.compress(orjson.dumps(doc), 1))
    assert back is not None and back.users == cursor.users and back.soft_deleted_ids == {"gone"}
    assert load(zlib.compress(orjson.dumps({**doc, "v": 1}))) is None  # an older layout: read again


def test_a_damaged_mirror_is_unreadable_not_an_error() -> None:
    blob = dump(_cursor())
    assert load(blob[:-8]) is None
    assert load(b"\x28\xb5\x2f\xfd" + b"\x00" * 16) is None
    assert load(b"not a mirror") is None
