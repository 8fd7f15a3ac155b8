"""fetch_snapshot / count_users / check_groups against an in-memory Graph over MockTransport."""

from __future__ import annotations

import httpx
import orjson
import pytest
from graph_fakes import API, FakeGraph, graph_error, guid, make_client, query

from entrasync.adapters.graph.errors import GraphBadRequestError, GraphTransientError
from entrasync.adapters.graph.reader import (
    DeltaCursor,
    apply_delta,
    check_groups,
    count_users,
    fetch_snapshot,
    user_from_graph,
)
from entrasync.domain.fields import GRAPH_USER_SELECT
from entrasync.domain.model import EntraUser

SELECT = ",".join(GRAPH_USER_SELECT)


def listing_requests(g: FakeGraph) -> list[httpx.Request]:
    return [r for r in g.log if r.url.path == "/v1.0/users"]


# -- full reads -----------------------------------------------------------------------------------


def test_full_read_without_filters(fake_graph: FakeGraph) -> None:
    h = make_client(fake_graph)
    progress: list[int] = []
    result = fetch_snapshot(h.client, graph_filter=None, group_ids=None, cursor=None, on_progress=progress.append)

    snap = result.snapshot
    assert result.mode == "full"
    assert set(snap.users) == {guid(1), guid(2), guid(3), guid(4)}
    ceo = snap.users[guid(1)]
    assert ceo == EntraUser.of(
        id=guid(1),
        user_principal_name="ceo@contoso.test",
        mail="ceo@contoso.test",
        display_name="Chief",
        given_name="C",
        surname="Eo",
        job_title="CEO",
        employee_id="1",
        office_location="HQ",
        department="Exec",
        account_enabled=True,
        user_type="Member",
        manager_id=None,
    )
    assert snap.users[guid(2)].manager_id == guid(1)
    assert snap.users[guid(2)].email == "ann@contoso.test"  # no mail -> UPN
    assert snap.users[guid(3)].account_enabled is False  # disabled users are listed too
    assert snap.users[guid(4)].manager_id is None  # orgContact manager is no manager
    assert snap.all_ids is None
    assert snap.group_member_ids is None
    assert snap.soft_deleted_ids == frozenset({guid(50)})
    assert progress == [2, 4]

    # The listing asks for exactly the mapped properties, the manager id, and 999-user pages.
    first = query(listing_requests(fake_graph)[0])
    assert first == {"$select": SELECT, "$expand": "manager($select=id)", "$top": "999"}
    # "sync from now" delta link taken BEFORE the listing, tracking the manager via $select.
    delta_req = fake_graph.log[0]
    assert delta_req.url.path == "/v1.0/users/delta"
    assert query(delta_req) == {"$select": f"{SELECT},manager", "$deltatoken": "latest"}
    assert result.cursor is not None
    assert result.cursor.delta_link == f"{API}/users/delta?$deltatoken=D0"
    assert result.cursor.users == dict(snap.users)
    assert result.cursor.soft_deleted_ids == {guid(50)}
    assert result.requests == h.client.request_count == len(fake_graph.log)


def test_full_read_with_default_filter_lists_all_ids_and_keeps_no_cursor(fake_graph: FakeGraph) -> None:
    h = make_client(fake_graph)
    result = fetch_snapshot(h.client, graph_filter="department eq 'Sales'", group_ids=None, cursor=None)
    snap = result.snapshot
    assert set(snap.users) == {guid(2), guid(3)}
    assert snap.users[guid(3)].manager_id == guid(2)
    assert snap.all_ids == frozenset({guid(1), guid(2), guid(3), guid(4)})
    assert snap.exists(guid(1)) and not snap.exists(guid(50))
    assert result.cursor is None  # delta cannot filter
    assert not any(r.url.path == "/v1.0/users/delta" for r in fake_graph.log)
    filtered = [r for r in listing_requests(fake_graph) if "$filter" in query(r)]
    assert all("ConsistencyLevel" not in r.headers for r in filtered)
    assert query(filtered[0])["$expand"] == "manager($select=id)"


def test_advanced_filter_uses_consistency_level_and_no_expand(fake_graph: FakeGraph) -> None:
    h = make_client(fake_graph)
    result = fetch_snapshot(h.client, graph_filter="endsWith(mail,'@fabrikam.test')", group_ids=None, cursor=None)
    snap = result.snapshot
    assert set(snap.users) == {guid(3), guid(4)}
    # Managers still known: taken from the unfiltered id listing with $expand.
    assert snap.users[guid(3)].manager_id == guid(2)
    assert snap.users[guid(4)].manager_id is None
    assert snap.all_ids == frozenset({guid(1), guid(2), guid(3), guid(4)})
    filtered = [r for r in listing_requests(fake_graph) if "$filter" in query(r)]
    assert len(filtered) == 1
    assert filtered[0].headers["ConsistencyLevel"] == "eventual"
    assert query(filtered[0])["$count"] == "true"
    assert "$expand" not in query(filtered[0])


def test_advanced_filter_sends_consistency_level_on_every_page(fake_graph: FakeGraph) -> None:
    fake_graph.users.extend(
        {"id": guid(10 + i), "userPrincipalName": f"u{i}@x", "mail": f"u{i}@fabrikam.test"} for i in range(5)
    )
    h = make_client(fake_graph)
    result = fetch_snapshot(h.client, graph_filter="endsWith(mail,'@fabrikam.test')", group_ids=None, cursor=None)
    assert len(result.snapshot.users) == 7
    pages = [r for r in listing_requests(fake_graph) if "$filter" in query(r)]
    assert len(pages) == 4
    assert all(r.headers.get("ConsistencyLevel") == "eventual" for r in pages)


def test_group_filter_reads_transitive_user_members(fake_graph: FakeGraph) -> None:
    h = make_client(fake_graph)
    result = fetch_snapshot(h.client, graph_filter=None, group_ids=[guid(70)], cursor=None)
    assert result.snapshot.group_member_ids == frozenset({guid(2), guid(3)})
    req = next(r for r in fake_graph.log if "transitiveMembers" in r.url.path)
    assert req.url.path == f"/v1.0/groups/{guid(70)}/transitiveMembers/microsoft.graph.user"
    assert query(req)["$select"] == "id"
    assert query(req)["$top"] == "999"


def test_missing_group_fails_the_fetch(fake_graph: FakeGraph) -> None:
    h = make_client(fake_graph)
    with pytest.raises(GraphBadRequestError, match=guid(99)):
        fetch_snapshot(h.client, graph_filter=None, group_ids=[guid(70), guid(99)], cursor=None)


def test_failure_mid_listing_raises_instead_of_returning_a_partial_snapshot(fake_graph: FakeGraph) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1.0/users" and query(request).get("$skiptoken") == "2":
            return httpx.Response(503)
        return fake_graph(request)

    h = make_client(handler, max_attempts=3)
    with pytest.raises(GraphTransientError):
        fetch_snapshot(h.client, graph_filter=None, group_ids=None, cursor=None)


def test_latest_delta_link_refused_means_no_cursor_but_a_full_snapshot(fake_graph: FakeGraph) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1.0/users/delta":
            return graph_error(400, "Request_UnsupportedQuery", "Unsupported Query.")
        return fake_graph(request)

    h = make_client(handler)
    result = fetch_snapshot(h.client, graph_filter=None, group_ids=None, cursor=None)
    assert result.cursor is None
    assert len(result.snapshot.users) == 4


# -- delta ----------------------------------------------------------------------------------------


def _cursor_from_full(g: FakeGraph) -> DeltaCursor:
    h = make_client(g)
    cursor = fetch_snapshot(h.client, graph_filter=None, group_ids=None, cursor=None).cursor
    assert cursor is not None
    return cursor


def test_delta_round_merges_changes(fake_graph: FakeGraph) -> None:
    cursor = _cursor_from_full(fake_graph)
    before = dict(cursor.users)
    fake_graph.delta_pages = [
        {
            "value": [
                # renamed; other properties absent = unchanged
                {"id": guid(1), "displayName": "Chief Exec"},
                # job title cleared; manager moved to the CEO... then see page 2
                {
                    "id": guid(3),
                    "jobTitle": None,
                    "manager@delta": [{"@odata.type": "#microsoft.graph.user", "id": guid(1)}],
                },
                {"id": guid(4), "@removed": {"reason": "changed"}},
            ],
            "@odata.nextLink": f"{API}/users/delta?$skiptoken=S1",
        },
        {
            "value": [
                # manager removed
                {
                    "id": guid(2),
                    "manager@delta": [
                        {"@odata.type": "#microsoft.graph.user", "id": guid(1), "@removed": {"reason": "deleted"}}
                    ],
                },
                # new user
                {"id": guid(5), "userPrincipalName": "new@contoso.test", "displayName": "New", "accountEnabled": True},
                # the previously deleted user is restored (no annotation)
                {"id": guid(50), "userPrincipalName": "back@contoso.test", "displayName": "Back"},
            ],
            "@odata.deltaLink": f"{API}/users/delta?$deltatoken=D9",
        },
    ]
    fake_graph.deleted = [guid(4)]
    h = make_client(fake_graph)
    result = fetch_snapshot(h.client, graph_filter=None, group_ids=None, cursor=cursor)

    assert result.mode == "delta"
    users = result.snapshot.users
    assert users[guid(1)].display_name == "Chief Exec"
    assert users[guid(1)].job_title == "CEO" and users[guid(1)].mail == "ceo@contoso.test"
    assert users[guid(3)].job_title is None
    assert users[guid(3)].manager_id == guid(1)
    assert users[guid(3)].account_enabled is False  # absent -> unchanged
    assert users[guid(2)].manager_id is None
    assert guid(4) not in users
    assert users[guid(5)].display_name == "New"
    assert users[guid(50)].user_principal_name == "back@contoso.test"
    assert result.snapshot.soft_deleted_ids == frozenset({guid(4)})
    assert result.snapshot.all_ids is None
    assert result.cursor is not None
    assert result.cursor.delta_link == f"{API}/users/delta?$deltatoken=D9"
    assert result.cursor.users == dict(users)
    # The caller's cursor is not mutated.
    assert cursor.users == before
    # Only the delta round and the deletedItems listing: no user listing.
    assert not listing_requests(fake_graph)[4:]  # the 2 pages of the earlier full read only
    assert result.requests == 3


@pytest.mark.parametrize(
    "error",
    [
        graph_error(400, "syncStateNotFound", "The sync state generation is not found."),
        graph_error(410, "resyncRequired", "Resync", {"Location": f"{API}/users/delta?$deltatoken="}),
        httpx.Response(410),
    ],
)
def test_expired_delta_token_falls_back_to_a_full_read(fake_graph: FakeGraph, error: httpx.Response) -> None:
    cursor = _cursor_from_full(fake_graph)
    fake_graph.delta_error = error
    fake_graph.log.clear()
    h = make_client(fake_graph)
    result = fetch_snapshot(h.client, graph_filter=None, group_ids=None, cursor=cursor)
    assert result.mode == "full"
    assert len(result.snapshot.users) == 4
    assert result.cursor is not None and result.cursor.delta_link.endswith("D0")
    assert result.requests == len(fake_graph.log)


def test_a_delta_link_for_another_graph_host_means_a_full_read(fake_graph: FakeGraph) -> None:
    """ENTRASYNC_GRAPH_URL changed since the link was stored (or the demo's emulator came back on another
    port): nothing is sent to the old host, and the refresh reads everything instead of failing at every run."""
    cursor = _cursor_from_full(fake_graph)
    moved = DeltaCursor(cursor.delta_link.replace(API.split("/v1.0")[0], "https://graph.elsewhere.test", 1),
                        cursor.users, cursor.soft_deleted_ids)  # fmt: skip
    assert moved.delta_link != cursor.delta_link
    fake_graph.log.clear()
    h = make_client(fake_graph)
    result = fetch_snapshot(h.client, graph_filter=None, group_ids=None, cursor=moved)
    assert result.mode == "full" and len(result.snapshot.users) == 4
    assert result.cursor is not None and result.cursor.delta_link.startswith(API)
    assert all(r.url.host != "graph.elsewhere.test" for r in fake_graph.log)


def test_cursor_is_ignored_when_a_graph_filter_is_on(fake_graph: FakeGraph) -> None:
    cursor = _cursor_from_full(fake_graph)
    h = make_client(fake_graph)
    result = fetch_snapshot(h.client, graph_filter="department eq 'Sales'", group_ids=None, cursor=cursor)
    assert result.mode == "full"
    assert result.cursor is None


def test_apply_delta_semantics() -> None:
    base = EntraUser.of(
        id="a", user_principal_name="a@x", mail="a@x", job_title="Dev", department="R&D", manager_id="m"
    )
    users = {
        "a": base,
        "b": EntraUser.of(id="b", user_principal_name="b@x"),
        "c": EntraUser.of(id="c", user_principal_name="c@x"),
    }
    soft = {"r"}
    apply_delta(
        users,
        soft,
        [
            {"id": "a", "department": None, "accountEnabled": False},
            {"id": "b", "@removed": {"reason": "changed"}},
            {"id": "c", "@removed": {"reason": "deleted"}},
            {"id": "r", "userPrincipalName": "r@x"},
            {"id": "a", "manager@delta": []},
        ],
    )
    a = users["a"]
    assert (a.job_title, a.department, a.account_enabled, a.manager_id, a.mail) == ("Dev", None, False, None, "a@x")
    assert "b" not in users and "b" in soft
    assert "c" not in users and "c" not in soft
    assert "r" in users and "r" not in soft


def test_manager_delta_to_an_org_contact_is_no_manager() -> None:
    users = {"a": EntraUser.of(id="a", user_principal_name="a@x", manager_id="m")}
    apply_delta(
        users, set(), [{"id": "a", "manager@delta": [{"@odata.type": "#microsoft.graph.orgContact", "id": "k"}]}]
    )
    assert users["a"].manager_id is None


# -- settings helpers -----------------------------------------------------------------------------


def test_count_users_uses_count_and_consistency_level(fake_graph: FakeGraph) -> None:
    h = make_client(fake_graph)
    assert count_users(h.client, "department eq 'Sales'") == 2
    req = fake_graph.log[-1]
    assert req.headers["ConsistencyLevel"] == "eventual"
    assert query(req)["$count"] == "true"
    assert count_users(h.client, None) == 4


def test_count_users_surfaces_graphs_message(fake_graph: FakeGraph) -> None:
    h = make_client(fake_graph)
    with pytest.raises(GraphBadRequestError) as info:
        count_users(h.client, "nonsense(")
    assert info.value.message == "Invalid filter clause: nonsense("


def test_check_groups_reports_missing(fake_graph: FakeGraph) -> None:
    h = make_client(fake_graph)
    assert check_groups(h.client, [guid(70), guid(98), guid(99)]) == [guid(98), guid(99)]


# -- bulk mapping ---------------------------------------------------------------------------------


def test_mapping_many_users_keeps_every_user_and_field() -> None:
    """The read path maps whole pages at once; its speed against a bare orjson loop is measured by the
    benchmark (bench/run.py, "read vs floor"), not asserted here, where the machine's load would decide."""
    rows = [
        {
            "id": f"{i:08d}-0000-0000-0000-000000000000",
            "userPrincipalName": f"user{i}@contoso.test",
            "mail": f"user{i}@contoso.test",
            "displayName": f"User {i}",
            "givenName": "U",
            "surname": str(i),
            "jobTitle": "Engineer",
            "employeeId": str(i),
            "officeLocation": "HQ",
            "department": "R&D",
            "accountEnabled": True,
            "userType": "Member",
            "manager": {"@odata.type": "#microsoft.graph.user", "id": "m"},
        }
        for i in range(5_000)
    ]
    body = orjson.dumps({"value": rows})
    users = {d["id"]: user_from_graph(d) for d in orjson.loads(body)["value"]}
    assert len(users) == 5_000
    assert users["00004999-0000-0000-0000-000000000000"].surname == "4999"
    first = users["00000000-0000-0000-0000-000000000000"]
    assert first == EntraUser.of(
        id="00000000-0000-0000-0000-000000000000",
        user_principal_name="user0@contoso.test",
        mail="user0@contoso.test",
        display_name="User 0",
        given_name="U",
        surname="0",
        job_title="Engineer",
        employee_id="0",
        office_location="HQ",
        department="R&D",
        account_enabled=True,
        user_type="Member",
        manager_id="m",
    )
    assert hash(first) == hash(EntraUser(**{f: getattr(first, f) for f in first.__dataclass_fields__}))


def test_count_users_counts_pages_when_graph_gives_no_count() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        q = query(request)
        if q.get("$top") == "1":
            return httpx.Response(200, json={"value": [{"id": "a"}]})
        if "$skiptoken" in q:
            return httpx.Response(200, json={"value": [{"id": "c"}]})
        return httpx.Response(
            200, json={"value": [{"id": "a"}, {"id": "b"}], "@odata.nextLink": f"{API}/users?$skiptoken=1"}
        )

    h = make_client(handler)
    assert count_users(h.client, "department eq 'Sales'") == 3
    assert all(r.headers["ConsistencyLevel"] == "eventual" for r in h.requests)
