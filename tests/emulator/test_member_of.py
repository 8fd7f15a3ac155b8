"""``/users/{id}/memberOf`` and ``/transitiveMemberOf`` (user-list-memberof, user-list-transitivememberof):
the groups holding a user directly and through nested groups; the OData cast is an advanced query."""

from __future__ import annotations

import httpx

from entrasync.emulator.admin_client import AdminClient

from .conftest import assert_graph_error

EVENTUAL = {"ConsistencyLevel": "eventual"}


def test_member_of_direct_and_transitive(graph: httpx.Client, admin: AdminClient) -> None:
    user = admin.list_users()[5]
    inner = admin.create_group("MemberOf Inner", [user["id"]])
    outer = admin.create_group("MemberOf Outer", [inner["id"]])
    direct = graph.get(f"/users/{user['id']}/memberOf").json()["value"]
    assert inner["id"] in {g["id"] for g in direct} and outer["id"] not in {g["id"] for g in direct}
    assert all(g["@odata.type"] == "#microsoft.graph.group" for g in direct)
    path = f"/users/{user['userPrincipalName']}/transitiveMemberOf/microsoft.graph.group"
    r = graph.get(path, params={"$select": "id,displayName", "$count": "true"}, headers=EVENTUAL)
    groups = {g["id"]: g for g in r.json()["value"]}
    assert {inner["id"], outer["id"]} <= set(groups) and r.json()["@odata.count"] == len(groups)
    assert set(groups[outer["id"]]) == {"@odata.type", "id", "displayName"}
    assert_graph_error(graph.get(path), 400, "Request_UnsupportedQuery")  # the cast needs an advanced query
    assert_graph_error(graph.get("/users/nobody@nowhere.example/memberOf"), 404, "Request_ResourceNotFound")
