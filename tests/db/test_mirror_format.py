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
from entrasync.domain import fields
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


def _rows(cursor: DeltaCursor) -> tuple[dict[str, object], list[list[object]]]:
    """The head and the rows of layouts 2 to 4 as their writers made them: a row per user, ``[id, mail,
    enabled, user type, manager, *values]``, empty custom fields left off, no tables."""
    head = {"v": 3, "link": cursor.delta_link, "soft": sorted(cursor.soft_deleted_ids),
            "fields": list(fields.FIELD_NAMES)}  # fmt: skip
    custom0 = fields.INDEX[fields.CUSTOM_FIELDS[0]]
    rows = []
    for u in cursor.users.values():
        values = list(u.values)
        if all(v is None for v in values[custom0:]):
            del values[custom0:]
        rows.append([u.id, u.mail, u.account_enabled, u.user_type, u.manager_id, *values])
    return head, rows


def _layout_4(cursor: DeltaCursor) -> bytes:
    """Layout 4 (the release before columns): one line of rows, the shared values as table indexes."""
    head, rows = _rows(cursor)
    tabled = list(sync_state_repo._TABLED)
    index: dict[object, int] = {}
    for row in rows:
        for at in tabled:
            row[at] = index.setdefault(orjson.dumps(row[at]), len(index))
    table = [orjson.loads(k) for k in index]
    return zstandard.ZstdCompressor().compress(
        orjson.dumps({**head, "v": 4, "tabled": tabled}) + b"\n" + orjson.dumps([table, rows])
    )


def test_a_mirror_is_stored_by_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Layout 5: a line is ``[table, columns]``; the custom columns only when someone holds one."""
    users = dict(_cursor().users)
    monkeypatch.setattr(sync_state_repo, "_CHUNK", 2)
    users["u3"] = EntraUser.of("u3", mail="cy@contoso.com", custom_1="CC-7")
    lines = zstandard.ZstdDecompressor().decompressobj().decompress(dump(DeltaCursor("l", users, set()))).split(b"\n")
    assert orjson.loads(lines[0])["v"] == 5
    (_, first), (_, second) = orjson.loads(lines[1]), orjson.loads(lines[2])
    assert first[0] == ["u1", "u2"] and first[1] == ["ann@contoso.com", "bob@contoso.com"]
    assert len(first) == 5 + fields.INDEX[fields.CUSTOM_FIELDS[0]]  # nobody holds a custom value
    assert len(second) == 5 + len(fields.FIELDS) and second[5 + fields.INDEX["custom_1"]] == ["CC-7"]
    back = load(dump(DeltaCursor("l", users, set())))
    assert back is not None and back.users == users


def test_a_mirror_of_layout_4_still_loads() -> None:
    cursor = _cursor()
    back = load(_layout_4(cursor))
    assert back is not None and back.users == cursor.users and back.soft_deleted_ids == {"gone"}


def test_shared_values_are_written_once_per_line_and_load_back_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    """Layouts 4 and 5: the user type and the fields people share as indexes into the line's table."""
    users = {
        f"u{i}": EntraUser.of(f"u{i}", mail=f"p{i}@contoso.com", job_title="Engineer" if i % 2 else None,
                              department="Sales" if i < 3 else None, city="Oslo", user_type="Member")
        for i in range(5)
    }  # fmt: skip
    monkeypatch.setattr(sync_state_repo, "_CHUNK", 2)  # three lines, a table each
    blob = dump(DeltaCursor("link", users, set()))
    text = zstandard.ZstdDecompressor().decompressobj().decompress(blob)
    assert text.count(b'"Oslo"') == 3 and text.count(b'"Member"') == 3  # once a line, not once a user
    back = load(blob)
    assert back is not None and back.users == users
    a, b = back.users["u1"], back.users["u3"]  # from different lines
    assert a.get("city") is b.get("city") and a.user_type is b.user_type
    assert back.users["u0"].get("departments") == ("Sales",) and back.users["u4"].get("departments") == ()


def test_a_mirror_of_layout_3_still_loads_and_a_bad_table_is_unreadable() -> None:
    cursor = _cursor()
    head, rows = _rows(cursor)
    v3 = zstandard.ZstdCompressor().compress(orjson.dumps({**head, "v": 3}) + b"\n" + orjson.dumps(rows))
    back = load(v3)
    assert back is not None and back.users == cursor.users
    lines = zstandard.ZstdDecompressor().decompressobj().decompress(dump(cursor)).split(b"\n")
    table, chunk = orjson.loads(lines[1])
    broken = [lines[0], orjson.dumps([table[:1], chunk])]  # indexes past the table's end
    assert load(zstandard.ZstdCompressor().compress(b"\n".join(broken))) is None
    other = {**orjson.loads(lines[0]), "tabled": [3]}  # another release's tabled columns
    assert load(zstandard.ZstdCompressor().compress(b"\n".join([orjson.dumps(other), *lines[1:]]))) is None


def test_a_mirror_written_with_zlib_before_still_loads() -> None:
    """Layout 2: one JSON document (head and users together), zlib-compressed."""
    cursor = _cursor()
    head, rows = _rows(cursor)
    doc = {**head, "v": 2, "users": rows}
    back = load(zlib.compress(orjson.dumps(doc), 1))
    assert back is not None and back.users == cursor.users and back.soft_deleted_ids == {"gone"}
    assert load(zlib.compress(orjson.dumps({**doc, "v": 1}))) is None  # an older layout: read again


def test_a_damaged_mirror_is_unreadable_not_an_error() -> None:
    blob = dump(_cursor())
    assert load(blob[:-8]) is None
    assert load(b"\x28\xb5\x2f\xfd" + b"\x00" * 16) is None
    assert load(b"not a mirror") is None


@pytest.mark.parametrize("column", [0, 1, 4, 5 + fields.INDEX["job_title"], 5 + fields.INDEX["custom_1"]])
def test_a_line_with_a_column_too_short_or_too_long_is_unreadable(column: int) -> None:
    """Users are built a column at a time: a column of another length must not leave some users
    without a value (or give one to nobody), whichever column it is."""
    users = dict(_cursor().users)
    users["u3"] = EntraUser.of("u3", mail="cy@contoso.com", custom_1="CC-7")  # the custom columns written
    lines = zstandard.ZstdDecompressor().decompressobj().decompress(dump(DeltaCursor("l", users, set()))).split(b"\n")
    head, (table, cols) = lines[0], orjson.loads(lines[1])
    assert load(zstandard.ZstdCompressor().compress(head + b"\n" + orjson.dumps([table, cols]))) is not None
    for changed in (cols[column][:-1], [*cols[column], cols[column][0]]):
        bad = [*cols[:column], changed, *cols[column + 1 :]]
        assert load(zstandard.ZstdCompressor().compress(head + b"\n" + orjson.dumps([table, bad]))) is None
