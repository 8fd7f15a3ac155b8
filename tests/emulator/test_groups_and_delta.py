"""Groups, members, transitive members and delta rounds driven by the admin API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from entrasync.emulator.admin_client import AdminClient
from entrasync.emulator.server import RunningEmulator

from .conftest import assert_graph_error, follow


def _group(emulator: RunningEmulator, name: str) -> str:
    return next(g.id for g in emulator.tenant.groups.values() if g.displayName == name)


def test_members_types_cast_and_transitive(graph: httpx.Client, emulator: RunningEmulator) -> None:
    # https://learn.microsoft.com/graph/api/group-list-members (direct, @odata.type per member, OData cast)
    # https://learn.microsoft.com/graph/api/group-list-transitivemembers (nested groups flattened)
    pilot = _group(emulator, "Hardware Pilot")
    direct = graph.get(f"/groups/{pilot}/members").json()["value"]
    types = {m["@odata.type"] for m in direct}
    assert types == {
        "#microsoft.graph.user",
        "#microsoft.graph.group",
        "#microsoft.graph.device",
        "#microsoft.graph.orgContact",
    }
    users_only = graph.get(f"/groups/{pilot}/members/microsoft.graph.user", params={"$select": "id,department"})
    assert users_only.json()["value"] and all(
        set(m) == {"@odata.type", "id", "department"} for m in users_only.json()["value"]
    )
    transitive = graph.get(f"/groups/{pilot}/transitiveMembers/microsoft.graph.user").json()["value"]
    leadership = _group(emulator, "Leadership")
    leaders = {m["id"] for m in graph.get(f"/groups/{leadership}/members").json()["value"]}
    assert leaders <= {m["id"] for m in transitive}
    assert len(transitive) > sum(m["@odata.type"] == "#microsoft.graph.user" for m in direct)
    nested = _group(emulator, "All Departments")
    all_users, requests_made = follow(
        graph, f"/groups/{nested}/transitiveMembers/microsoft.graph.user?$top=999&$select=id"
    )
    assert requests_made > 1 and len({u["id"] for u in all_users}) == len(all_users)
    assert_graph_error(graph.get("/groups/not-a-group/members"), 404, "Request_ResourceNotFound")
    groups = graph.get("/groups", params={"$select": "id,displayName"}).json()["value"]
    assert {"All Staff", "Leadership"} <= {g["displayName"] for g in groups}


def test_soft_deleted_user_leaves_lists_and_members(
    graph: httpx.Client, admin: AdminClient, emulator: RunningEmulator
) -> None:
    # Soft delete, 30 days in deletedItems: https://learn.microsoft.com/graph/api/resources/directory
    group = admin.create_group("Temp Team")
    user = admin.create_user(displayName="Temp Person", mailNickname="temp.person")
    admin.add_member(group["id"], user["id"])
    assert [m["id"] for m in graph.get(f"/groups/{group['id']}/members").json()["value"]] == [user["id"]]
    admin.soft_delete_user(user["id"])
    assert graph.get(f"/groups/{group['id']}/members").json()["value"] == []
    assert not graph.get("/users", params={"$filter": f"id eq '{user['id']}'"}).json()["value"]
    admin.restore_user(user["id"])
    assert [m["id"] for m in graph.get(f"/groups/{group['id']}/members").json()["value"]] == [user["id"]]


def _round(graph: httpx.Client, url: str) -> tuple[list[dict[str, Any]], str, int]:
    rows: list[dict[str, Any]] = []
    requests_made = 0
    next_url: str | None = url
    while True:
        r = graph.get(next_url or "")
        requests_made += 1
        assert r.status_code == 200, r.text
        body = r.json()
        rows.extend(body["value"])
        if "@odata.deltaLink" in body:
            assert "@odata.nextLink" not in body
            return rows, body["@odata.deltaLink"], requests_made
        next_url = body["@odata.nextLink"]


@pytest.fixture
def users_delta(graph: httpx.Client) -> str:
    rows, link, requests_made = _round(
        graph, "/users/delta?$select=displayName,jobTitle,department,accountEnabled,manager"
    )
    assert requests_made > 10  # delta pages are server-sized (200), not 999
    assert len({r["id"] for r in rows}) == len(rows)
    assert any("manager@delta" in r for r in rows)
    return link


def test_delta_rounds_for_each_kind_of_change(
    graph: httpx.Client, admin: AdminClient, users_delta: str, emulator: RunningEmulator
) -> None:
    # https://learn.microsoft.com/graph/delta-query-overview and https://learn.microsoft.com/graph/api/user-delta
    rows, link, _ = _round(graph, users_delta)
    assert rows == []  # an empty round still ends with a deltaLink
    joiner = admin.create_user(displayName="Joiner One", mailNickname="joiner.one", department="Sales", jobTitle="Rep")
    mover = next(u for u in emulator.tenant.users.values() if u._manager is not None and u.jobTitle)
    boss = next(u for u in emulator.tenant.users.values() if u._manager is None)
    admin.set_manager(mover.id, boss.id if mover._manager != boss.id else None)
    cleared = next(u for u in emulator.tenant.users.values() if u.jobTitle and u.id != mover.id)
    admin.update_user(cleared.id, jobTitle=None)
    leaver = next(u for u in emulator.tenant.users.values() if u.id not in (mover.id, cleared.id, joiner["id"]))
    admin.soft_delete_user(leaver.id)
    gone = admin.create_user(displayName="Short Stay", mailNickname="short.stay")
    rows, link, _ = _round(graph, link)
    admin.hard_delete_user(gone["id"])
    unrelated = next(u for u in emulator.tenant.users.values() if u.mobilePhone is None and u.id != mover.id)
    admin.update_user(unrelated.id, mobilePhone="+1 555")  # not a tracked property
    by_id = {r["id"]: r for r in rows}
    assert by_id[joiner["id"]]["displayName"] == "Joiner One"
    assert "@removed" not in by_id[joiner["id"]]
    assert by_id[leaver.id] == {"id": leaver.id, "@removed": {"reason": "changed"}}
    assert by_id[cleared.id]["jobTitle"] is None
    assert "manager@delta" in by_id[mover.id]
    rows, link, _ = _round(graph, link)
    by_id = {r["id"]: r for r in rows}
    assert by_id[gone["id"]] == {"id": gone["id"], "@removed": {"reason": "deleted"}}
    assert unrelated.id not in by_id
    admin.restore_user(leaver.id)
    rows, link, _ = _round(graph, link)
    restored = {r["id"]: r for r in rows}[leaver.id]
    assert "@removed" not in restored and restored["displayName"] == leaver.displayName
    # Prefer: return=minimal -> only changed properties
    admin.update_user(joiner["id"], department="Marketing")
    r = graph.get(link, headers={"Prefer": "return=minimal"}).json()
    assert {x["id"]: x for x in r["value"]}[joiner["id"]] == {"id": joiner["id"], "department": "Marketing"}


def test_delta_latest_filter_and_unsupported_options(graph: httpx.Client, admin: AdminClient) -> None:
    # $deltatoken=latest ("sync from now"), $filter=id eq only, no $top/$orderby: delta-query-overview
    body = graph.get("/users/delta", params={"$deltatoken": "latest"}).json()
    assert body["value"] == [] and "@odata.deltaLink" in body
    assert_graph_error(graph.get("/users/delta", params={"$top": "999"}), 400, "Request_UnsupportedQuery")
    assert_graph_error(
        graph.get("/users/delta", params={"$filter": "department eq 'Sales'"}), 400, "Request_UnsupportedQuery"
    )
    u = admin.create_user(displayName="Only Me", mailNickname="only.me")
    rows, link, _ = _round(graph, f"/users/delta?$filter=id eq '{u['id']}'&$select=displayName")
    assert [r["id"] for r in rows] == [u["id"]]
    admin.update_user(u["id"], displayName="Only Me Renamed")
    other = admin.create_user(displayName="Not Me", mailNickname="not.me")
    rows, _, _ = _round(graph, link)
    assert [r["id"] for r in rows] == [u["id"]] and other["id"] not in {r["id"] for r in rows}


def test_group_delta_members_annotations(graph: httpx.Client, admin: AdminClient) -> None:
    # https://learn.microsoft.com/graph/api/group-delta : members@delta, removed members carry @removed
    group = admin.create_group("Delta Group")
    a = admin.create_user(displayName="Member A", mailNickname="member.a")
    b = admin.create_user(displayName="Member B", mailNickname="member.b")
    admin.add_member(group["id"], a["id"])
    rows, link, _ = _round(graph, "/groups/delta?$select=displayName,members")
    mine = {r["id"]: r for r in rows}[group["id"]]
    assert mine["members@delta"] == [{"@odata.type": "#microsoft.graph.user", "id": a["id"]}]
    admin.add_member(group["id"], b["id"])
    admin.remove_member(group["id"], a["id"])
    rows, link, _ = _round(graph, link)
    entries = {m["id"]: m for m in {r["id"]: r for r in rows}[group["id"]]["members@delta"]}
    assert "@removed" not in entries[b["id"]]
    assert entries[a["id"]]["@removed"] == {"reason": "deleted"}


@pytest.mark.parametrize("mode", ["400", "410"])
def test_expired_delta_tokens(graph: httpx.Client, admin: AdminClient, mode: str) -> None:
    # delta-query-overview "Token duration" (syncStateNotFound) and "Synchronization reset" (410 + Location)
    body = graph.get("/users/delta", params={"$deltatoken": "latest", "$select": "displayName"}).json()
    link = body["@odata.deltaLink"]
    admin.expire_delta_tokens(mode)
    r = graph.get(link)
    if mode == "400":
        assert_graph_error(r, 400, "syncStateNotFound")
    else:
        assert_graph_error(r, 410, "resyncRequired")
        location = r.headers["Location"]
        assert location.endswith("$deltatoken=") and "/users/delta?" in location
        fresh = graph.get(location)
        assert fresh.status_code == 200 and "value" in fresh.json()
    # a token the emulator never issued is refused the same way in both modes
    assert_graph_error(graph.get("/users/delta", params={"$deltatoken": "garbage"}), 400, "syncStateNotFound")
    admin.settings(delta_expiry_mode="400")
