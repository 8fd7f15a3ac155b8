"""Issue 13: a churn round stores a patch of the users it touched beside the mirror instead of the whole
mirror again (adapters.db.mirror_patches), and the next round loads base + patches as the very users the
round merged; past the limits the whole mirror is written again and the patches go."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from tests.graph.graph_fakes import API, guid
from tests.services.conftest import Org

from entrasync.adapters.db import mirror_patches
from entrasync.adapters.db import tables as t
from entrasync.services import sync
from entrasync.services.context import Actor
from entrasync.services.sync import RefreshResult


def _round(items: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """Delta answers for the stored link ``D{n}``: the items, then ``D{n+1}``."""
    link = f"{API}/users/delta?$deltatoken=D{n + 1}"
    skipped = [{"value": [], "@odata.deltaLink": f"{API}/users/delta?$deltatoken=D{n}"}] * n
    return [*skipped, {"value": items, "@odata.deltaLink": link}, {"value": [], "@odata.deltaLink": link}]


def refresh(svc: Org) -> RefreshResult:
    with svc.client() as client:
        return sync.refresh(svc.ctx, svc.org_id, trigger="cli", actor=Actor.cli(), client=client)


@pytest.fixture
def merged(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """The users each round held when it stored a patch (what the next load must give back)."""
    seen: list[dict[str, Any]] = []
    real = mirror_patches.dump_patch

    def recording(users: Any, touched: Any, soft: set[str]) -> tuple[bytes, int]:
        seen.append({"users": dict(users), "soft": set(soft)})
        return real(users, touched, soft)

    monkeypatch.setattr(mirror_patches, "dump_patch", recording)
    yield seen


def stored(svc: Org) -> tuple[bytes, tuple[int, int], Any]:
    with svc.ctx.read() as uow:
        base = uow.conn.execute(sa.select(t.sync_mirrors.c.cursor).where(t.sync_mirrors.c.org_id == svc.org_id))
        return bytes(base.scalar_one()), uow.sync_state.patch_load(svc.org_id), uow.sync_state.mirror(svc.org_id)


def test_churn_rounds_store_patches_that_load_as_the_merged_users(
    svc: Org, merged: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = refresh(svc)
    assert first.outcome == "applied"
    base, load, _ = stored(svc)
    assert load == (0, 0)
    rounds = [
        [{"id": guid(2), "jobTitle": "Lead"},
         {"id": guid(300), "userPrincipalName": "new@contoso.test", "mail": "new@contoso.test",
          "displayName": "New", "accountEnabled": True, "userType": "Member", "manager@delta": [{"id": guid(2)}]}],
        [{"id": guid(300), "@removed": {"reason": "changed"}}, {"id": guid(1), "department": "Board"}],
        [{"id": guid(2), "jobTitle": "Chief"}],
    ]  # fmt: skip
    monkeypatch.setattr(mirror_patches, "MAX_PATCHES", 2)
    for n, items in enumerate(rounds[:2]):
        svc.graph.delta_pages = _round(items, n)
        assert refresh(svc).outcome == "applied"
        again, load, mirror = stored(svc)
        assert again == base  # the mirror itself was not written again
        assert load == (n + 1, sum(len({i["id"] for i in r}) for r in rounds[: n + 1]))
        assert mirror is not None and mirror.users == merged[-1]["users"]
        assert list(mirror.users) == list(merged[-1]["users"])
        assert mirror.soft_deleted_ids == merged[-1]["soft"]
    assert guid(300) not in merged[-1]["users"]
    # A third patch would pass MAX_PATCHES: the whole mirror is written again, the patches dropped.
    svc.graph.delta_pages = _round(rounds[2], 2)
    out = refresh(svc)
    assert out.outcome == "applied" and out.counts["update"] == 1
    rewritten, load, mirror = stored(svc)
    assert rewritten != base and load == (0, 0)
    assert mirror is not None and mirror.users[guid(2)].values != merged[-1]["users"][guid(2)].values
    assert len(merged) == 2  # the third round stored no patch
