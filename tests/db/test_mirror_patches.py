"""A delta round's changes written beside the stored mirror as a patch (adapters.db.mirror_patches):
loading the base and its patches gives the users the rounds' merges gave; the whole mirror is written
again past the limits; a damaged patch makes the mirror unreadable (a full read), never a wrong one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
import zstandard

from entrasync.adapters.db import mirror_patches
from entrasync.adapters.db import tables as t
from entrasync.adapters.db.mirror_patches import dump_patch, read_patch
from entrasync.adapters.db.sync_state_repo import apply_patch, dump, load
from entrasync.adapters.db.uow import Database
from entrasync.adapters.graph.mapping import apply_delta
from entrasync.adapters.graph.reader import DeltaCursor
from entrasync.domain import fields
from entrasync.domain.model import EntraUser

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _base() -> DeltaCursor:
    users = {
        f"u{i}": EntraUser.of(f"u{i}", f"p{i}@contoso.com", f"p{i}@contoso.com", department="Sales",
                              job_title="Engineer", manager_id="u0" if i else None, business_phones=("+1 555",))
        for i in range(6)
    }  # fmt: skip
    return DeltaCursor("link-0", users, {"gone-before"})


def _round(cursor: DeltaCursor, items: list[dict[str, Any]], soft_now: set[str]) -> tuple[DeltaCursor, dict[str, Any]]:
    """What the reader does with a delta round: merge into a copy, noting each touched user first seen."""
    users = dict(cursor.users)
    soft = set(cursor.soft_deleted_ids)
    touched: dict[str, Any] = {}
    for item in items:
        touched.setdefault(item["id"], users.get(item["id"]))
    apply_delta(users, soft, items)
    return DeltaCursor(cursor.delta_link, users, soft_now), touched


ROUND_1 = [
    {"id": "u2", "jobTitle": "Lead", "businessPhones": ["+1 556", "+1 557"]},
    {"id": "u3", "@removed": {"reason": "changed"}},
    {"id": "u9", "userPrincipalName": "new@contoso.com", "mail": "new@contoso.com", "accountEnabled": True,
     "department": "Support", "manager@delta": [{"id": "u2"}]},
]  # fmt: skip
ROUND_2 = [
    {"id": "u9", "@removed": {"reason": "deleted"}},
    {"id": "u3", "userPrincipalName": "p3@contoso.com", "mail": "p3@contoso.com", "accountEnabled": False},
    {"id": "u1", "department": None, "manager@delta": []},
]


def _rounds() -> tuple[DeltaCursor, list[bytes], DeltaCursor]:
    base = _base()
    after_1, touched_1 = _round(base, ROUND_1, {"gone-before", "u3"})
    after_2, touched_2 = _round(after_1, ROUND_2, {"gone-before"})
    patches = [dump_patch(after_1.users, touched_1, after_1.soft_deleted_ids)[0],
               dump_patch(after_2.users, touched_2, after_2.soft_deleted_ids)[0]]  # fmt: skip
    return base, patches, after_2


def test_the_base_and_its_patches_load_as_the_merged_users() -> None:
    base, patches, merged = _rounds()
    users = dict(base.users)
    soft = None
    for p in patches:
        soft = apply_patch(users, p)
    assert users == merged.users and list(users) == list(merged.users)  # the same users, in the same order
    assert soft == {"gone-before"}
    assert users["u3"].account_enabled is False and users["u1"].manager_id is None and "u9" not in users
    assert users["u2"].values == merged.users["u2"].values  # tuples come back as tuples


def test_a_patch_holds_only_the_users_its_round_touched() -> None:
    base, patches, _ = _rounds()
    first = read_patch(patches[0])
    assert first is not None
    assert [r[0] for r in first.rows] == ["u2", "u9"] and first.gone == ["u3"]  # updated, new; removed
    assert first.soft == {"gone-before", "u3"}
    _, n = dump_patch(base.users, ["u1", "u3", "gone"], set())
    assert n == 3


@pytest.mark.parametrize(
    "damage",
    [b"not zstd", zstandard.ZstdCompressor().compress(b'{"v": 99}'),
     zstandard.ZstdCompressor().compress(b'{"v": 1, "fields": ["other"], "soft": [], "gone": [], "rows": []}'),
     zstandard.ZstdCompressor().compress(orjson.dumps({"v": 1, "fields": list(fields.FIELD_NAMES), "soft": [],
                                                       "gone": [], "rows": [["u1", None, True]]}))],
)  # fmt: skip
def test_a_damaged_or_foreign_patch_is_unreadable(damage: bytes) -> None:
    assert apply_patch(dict(_base().users), damage) is None


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    with database.write() as uow:
        uow.conn.execute(sa.insert(t.organisations).values(id=1, slug="o", name="O", created_at=NOW))
    yield database
    database.dispose()


def test_patches_are_stored_beside_the_mirror_and_loaded_with_it(db: Database) -> None:
    base, patches, merged = _rounds()
    with db.write() as uow:
        uow.sync_state.write(1, dump(base), None, NOW, "link-0")
    for i, p in enumerate(patches, start=1):
        with db.write() as uow:
            uow.sync_state.write_patch(1, p, 3, NOW, f"link-{i}")
    with db.read() as uow:
        back = uow.sync_state.mirror(1)
        assert uow.sync_state.patch_load(1) == (2, 6)
        assert uow.sync_state.link(1, None) == ("link-2", None)
        base_blob = uow.conn.execute(sa.select(t.sync_mirrors.c.cursor)).scalar_one()
    assert back is not None and back.users == merged.users and back.soft_deleted_ids == {"gone-before"}
    assert back.delta_link == "link-2"
    assert load(bytes(base_blob)) == base  # the base row was not rewritten
    with db.write() as uow:  # a whole mirror written again drops the patches
        uow.sync_state.write(1, dump(merged), None, NOW, "link-3")
    with db.read() as uow:
        assert uow.sync_state.patch_load(1) == (0, 0)
        again = uow.sync_state.mirror(1)
    assert again is not None and again.users == merged.users
    with db.write() as uow:
        uow.sync_state.forget(1)
    with db.read() as uow:
        assert uow.conn.execute(sa.select(sa.func.count()).select_from(t.sync_mirror_patches)).scalar_one() == 0


def test_a_damaged_patch_makes_the_mirror_unreadable(db: Database) -> None:
    base, patches, _ = _rounds()
    with db.write() as uow:
        uow.sync_state.write(1, dump(base), None, NOW, "link-0")
        uow.sync_state.write_patch(1, patches[0], 3, NOW, "link-1")
        uow.sync_state.write_patch(1, b"damaged", 1, NOW, "link-2")
    with db.read() as uow:
        assert uow.sync_state.mirror(1) is None  # then the refresh reads Entra in full


def test_the_limits_of_patching() -> None:
    assert mirror_patches.should_patch((0, 0), 1_000, 100_000)
    assert not mirror_patches.should_patch((0, 0), 10_001, 100_000)  # past a tenth: write it whole
    assert not mirror_patches.should_patch((5, 9_500), 600, 100_000)
    assert not mirror_patches.should_patch((mirror_patches.MAX_PATCHES, 64), 1, 100_000)
    assert mirror_patches.should_patch((3, 30), 10, 60)  # small tenants: at least MIN_USERS a patch
