"""GET /v1.0/users and friends: paging, $select, $filter, advanced queries, errors."""

from __future__ import annotations

import ssl
from urllib.parse import parse_qs, urlsplit

import httpx
import msal
import requests

from entrasync.emulator.admin_client import AdminClient
from entrasync.emulator.server import EmulatorInfo, RunningEmulator

from .conftest import assert_graph_error, follow

SELECT = (
    "id,accountEnabled,mail,userPrincipalName,displayName,givenName,surname,jobTitle,employeeId,"
    "officeLocation,department,userType"
)
EVENTUAL = {"ConsistencyLevel": "eventual"}


def test_msal_token_and_paging_10k_users_with_top_999(info: EmulatorInfo, emulator: RunningEmulator) -> None:
    # Client credentials: https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
    # Paging: https://learn.microsoft.com/graph/paging (follow @odata.nextLink verbatim; none on the last page)
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE must not override verify= (PRODUCT.md Appendix B)
    session.verify = info.ca_bundle
    app = msal.ConfidentialClientApplication(
        info.client_id,
        client_credential=info.client_secret,
        authority=f"{info.login_url}/{info.tenant_id}",
        instance_discovery=False,
        http_client=session,
    )
    result = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result
    with httpx.Client(
        verify=ssl.create_default_context(cafile=info.ca_bundle),
        trust_env=False,
        headers={"Authorization": f"Bearer {result['access_token']}"},
    ) as client:
        rows, requests_made = follow(
            client, f"{info.graph_url}/v1.0/users?$top=999&$select={SELECT}&$expand=manager($select=id)"
        )
    live = len(emulator.tenant.users)
    assert len(rows) == live
    assert len({r["id"] for r in rows}) == len(rows)
    assert requests_made == -(-live // 999)
    ceo = [r for r in rows if "manager" not in r]
    assert len(ceo) >= 1
    with_mgr = next(r for r in rows if "manager" in r)
    assert with_mgr["manager"] == {"@odata.type": "#microsoft.graph.user", "id": with_mgr["manager"]["id"]}


def test_next_link_is_absolute_with_opaque_skiptoken_and_absent_on_last_page(
    graph: httpx.Client, info: EmulatorInfo
) -> None:
    # https://learn.microsoft.com/graph/paging
    body = graph.get("/users", params={"$top": "5", "$select": "id"}).json()
    link = body["@odata.nextLink"]
    assert link.startswith(f"{info.graph_url}/v1.0/users?")
    assert "$skiptoken" in parse_qs(urlsplit(link).query)
    assert body["@odata.context"].endswith("$metadata#users()") or "$metadata#users" in body["@odata.context"]
    second = graph.get(link).json()
    assert {r["id"] for r in second["value"]}.isdisjoint({r["id"] for r in body["value"]})
    last = graph.get("/users", params={"$filter": "userType eq 'Guest'", "$top": "999"}).json()
    assert "@odata.nextLink" not in last and last["value"]


def test_top_bounds_and_default(graph: httpx.Client) -> None:
    # $top 1..999 else 400 Request_UnsupportedQuery: https://learn.microsoft.com/graph/api/user-list#optional-query-parameters
    assert len(graph.get("/users").json()["value"]) == 100
    assert len(graph.get("/users", params={"$top": "999"}).json()["value"]) == 999
    for bad in ("0", "1000", "abc", "-1"):
        assert_graph_error(graph.get("/users", params={"$top": bad}), 400, "Request_UnsupportedQuery")


def test_default_property_set_without_select(graph: httpx.Client) -> None:
    # Default properties: https://learn.microsoft.com/graph/api/resources/user#properties (returned by default)
    row = graph.get("/users", params={"$top": "1"}).json()["value"][0]
    assert set(row) == {
        "businessPhones",
        "displayName",
        "givenName",
        "jobTitle",
        "mail",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
        "surname",
        "userPrincipalName",
        "id",
    }
    assert isinstance(row["businessPhones"], list)
    selected = graph.get("/users", params={"$top": "1", "$select": "displayName,accountEnabled"}).json()["value"][0]
    assert set(selected) == {"id", "displayName", "accountEnabled"}
    assert_graph_error(graph.get("/users", params={"$select": "nope"}), 400, "BadRequest")


def test_filter_default_operators_and_escaping(graph: httpx.Client, admin: AdminClient) -> None:
    # https://learn.microsoft.com/graph/filter-query-parameter ('' escapes a quote; eq/startsWith/in by default)
    created = admin.create_user(
        displayName="Cian O'Brien-Test",
        givenName="Cian",
        surname="O'Brien-Test",
        mailNickname="cian.obrientest",
        department="Quality",
    )
    rows = graph.get("/users", params={"$filter": "displayName eq 'Cian O''Brien-Test'", "$select": "id"}).json()
    assert [r["id"] for r in rows["value"]] == [created["id"]]
    rows = graph.get("/users", params={"$filter": "startsWith(surname,'o''brien-t') and department eq 'Quality'"})
    assert [r["id"] for r in rows.json()["value"]] == [created["id"]]
    rows = graph.get("/users", params={"$filter": "department in ('Quality','Nowhere')", "$select": "id"})
    assert [r["id"] for r in rows.json()["value"]] == [created["id"]]
    disabled = graph.get(
        "/users", params={"$filter": "accountEnabled eq false", "$select": "accountEnabled", "$top": "999"}
    ).json()["value"]
    assert disabled and all(r["accountEnabled"] is False for r in disabled)
    assert_graph_error(graph.get("/users", params={"$filter": "displayName eq"}), 400, "BadRequest")
    assert_graph_error(graph.get("/users", params={"$filter": "shoeSize eq 4"}), 400, "Request_BadRequest")
    assert_graph_error(
        graph.get("/users", params={"$filter": "endsWith(department,'x')"}, headers=EVENTUAL),
        400,
        "Request_UnsupportedQuery",
    )


def test_advanced_queries_need_consistency_level_and_count(graph: httpx.Client) -> None:
    # https://learn.microsoft.com/graph/aad-advanced-queries#error-handling-for-advanced-queries-on-directory-objects
    for flt in ("endsWith(mail,'@contoso.com')", "department ne 'Sales'", "not(department eq 'Sales')"):
        err = assert_graph_error(
            graph.get("/users", params={"$filter": flt, "$count": "true"}), 400, "Request_UnsupportedQuery"
        )
        assert "ConsistencyLevel" in err["message"]
        assert_graph_error(
            graph.get("/users", params={"$filter": flt}, headers=EVENTUAL), 400, "Request_UnsupportedQuery"
        )
        ok = graph.get("/users", params={"$filter": flt, "$count": "true", "$top": "5"}, headers=EVENTUAL)
        assert ok.status_code == 200 and isinstance(ok.json()["@odata.count"], int)
    err = assert_graph_error(
        graph.get("/users", params={"$search": '"displayName:john"'}), 400, "Request_UnsupportedQuery"
    )
    assert "ConsistencyLevel" in err["message"]
    found = graph.get("/users", params={"$search": '"displayName:john"', "$select": "displayName"}, headers=EVENTUAL)
    assert found.status_code == 200 and all("john" in r["displayName"].lower() for r in found.json()["value"])
    assert_graph_error(
        graph.get("/users", params={"$filter": "department eq 'Sales'", "$orderby": "displayName"}),
        400,
        "Request_UnsupportedQuery",
    )
    ordered = graph.get(
        "/users",
        params={
            "$filter": "department eq 'Sales'",
            "$orderby": "displayName",
            "$count": "true",
            "$select": "displayName",
        },
        headers=EVENTUAL,
    )
    names = [r["displayName"].lower() for r in ordered.json()["value"]]
    assert names == sorted(names)
    # $count=true without the header is silently ignored; /$count without it is an error
    assert "@odata.count" not in graph.get("/users", params={"$count": "true", "$top": "1"}).json()
    assert_graph_error(graph.get("/users/$count"), 400, "Request_BadRequest")
    count = graph.get("/users/$count", headers=EVENTUAL)
    assert count.status_code == 200 and int(count.text) > 9000


def test_consistency_header_is_needed_on_every_page(graph: httpx.Client) -> None:
    # The header is not part of the nextLink: https://learn.microsoft.com/graph/aad-advanced-queries
    first = graph.get(
        "/users",
        params={"$filter": "endsWith(mail,'@contoso.com')", "$count": "true", "$top": "50", "$select": "id,mail"},
        headers=EVENTUAL,
    ).json()
    link = first["@odata.nextLink"]
    assert_graph_error(graph.get(link), 400, "Request_UnsupportedQuery")
    second = graph.get(link, headers=EVENTUAL)
    assert second.status_code == 200
    assert all(r["mail"].endswith("@contoso.com") for r in second.json()["value"])


def test_get_user_by_id_or_upn_and_manager(graph: httpx.Client, emulator: RunningEmulator) -> None:
    # https://learn.microsoft.com/graph/api/user-get and https://learn.microsoft.com/graph/api/user-list-manager
    tenant = emulator.tenant
    ceo = next(u for u in tenant.users.values() if u._manager is None)
    report = next(u for u in tenant.users.values() if u._manager == ceo.id)
    assert graph.get(f"/users/{report.id}").json()["id"] == report.id
    assert graph.get(f"/users/{report.userPrincipalName}").json()["id"] == report.id
    mgr = graph.get(f"/users/{report.id}/manager", params={"$select": "id,displayName"}).json()
    assert mgr["id"] == ceo.id and mgr["@odata.type"] == "#microsoft.graph.user"
    assert_graph_error(graph.get(f"/users/{ceo.id}/manager"), 404, "Request_ResourceNotFound")
    assert_graph_error(graph.get("/users/00000000-0000-0000-0000-000000000000"), 404, "Request_ResourceNotFound")
    expanded = graph.get(f"/users/{report.id}", params={"$expand": "manager"}).json()
    assert expanded["manager"]["id"] == ceo.id and "displayName" in expanded["manager"]


def test_auth_errors_and_envelope(info: EmulatorInfo, admin: AdminClient, graph: httpx.Client) -> None:
    # 401 InvalidAuthenticationToken, 403 Authorization_RequestDenied: https://learn.microsoft.com/graph/errors
    with httpx.Client(
        base_url=f"{info.graph_url}/v1.0",
        verify=ssl.create_default_context(cafile=info.ca_bundle),
        trust_env=False,
    ) as anon:
        assert_graph_error(anon.get("/users"), 401, "InvalidAuthenticationToken")
        assert_graph_error(
            anon.get("/users", headers={"Authorization": "Bearer not.a.jwt"}), 401, "InvalidAuthenticationToken"
        )
        expired = admin.mint_app_token(lifetime=0)
        err = assert_graph_error(
            anon.get("/users", headers={"Authorization": f"Bearer {expired}"}), 401, "InvalidAuthenticationToken"
        )
        assert "expired" in err["message"]
        wrong_aud = admin.mint_app_token(aud="https://example.com")
        assert_graph_error(
            anon.get("/users", headers={"Authorization": f"Bearer {wrong_aud}"}), 401, "InvalidAuthenticationToken"
        )
        other_tenant = admin.mint_app_token(tid="11111111-1111-1111-1111-111111111111")
        assert_graph_error(
            anon.get("/users", headers={"Authorization": f"Bearer {other_tenant}"}), 401, "InvalidAuthenticationToken"
        )
        no_users = admin.mint_app_token(roles=["GroupMember.Read.All"])
        assert_graph_error(
            anon.get("/users", headers={"Authorization": f"Bearer {no_users}"}), 403, "Authorization_RequestDenied"
        )
        no_groups = admin.mint_app_token(roles=["User.Read.All"])
        assert_graph_error(
            anon.get("/groups", headers={"Authorization": f"Bearer {no_groups}"}), 403, "Authorization_RequestDenied"
        )
    r = graph.get("/users/x/y/z", headers={"client-request-id": "abc-123"})
    assert_graph_error(r, 404, "Request_ResourceNotFound")
    assert r.headers["client-request-id"] == "abc-123"
    r = graph.get("/nothing-here", headers={"client-request-id": "abc-123"})
    assert assert_graph_error(r, 400, "BadRequest")["innerError"]["client-request-id"] == "abc-123"
    assert_graph_error(graph.delete("/users"), 405, "Request_BadRequest")
    r = graph.get(f"{info.graph_url}/not-graph/at/all")
    assert r.status_code == 404 and "error" in r.json()


def test_revoked_permission_via_admin_api(info: EmulatorInfo, admin: AdminClient) -> None:
    from .conftest import app_token

    admin.set_app_permissions(["GroupMember.Read.All"])
    token = app_token(info)
    with httpx.Client(verify=ssl.create_default_context(cafile=info.ca_bundle), trust_env=False) as c:
        r = c.get(f"{info.graph_url}/v1.0/users", headers={"Authorization": f"Bearer {token}"})
    assert_graph_error(r, 403, "Authorization_RequestDenied")


def test_deleted_items_and_restore(graph: httpx.Client, admin: AdminClient, info: EmulatorInfo) -> None:
    # https://learn.microsoft.com/graph/api/directory-deleteditems-list and directory-deleteditems-restore
    user = admin.create_user(displayName="Leaver Soon", mailNickname="leaver.soon")
    admin.soft_delete_user(user["id"])
    assert_graph_error(graph.get(f"/users/{user['id']}"), 404, "Request_ResourceNotFound")
    deleted = follow(graph, "/directory/deletedItems/microsoft.graph.user?$top=999")[0]
    assert user["id"] in {d["id"] for d in deleted}
    assert all(d.get("deletedDateTime") for d in deleted)
    assert_graph_error(graph.post(f"/directory/deletedItems/{user['id']}/restore"), 403, "Authorization_RequestDenied")
    admin.set_app_permissions(["User.ReadWrite.All", "GroupMember.Read.All"])
    from .conftest import app_token

    r = graph.post(
        f"/directory/deletedItems/{user['id']}/restore", headers={"Authorization": f"Bearer {app_token(info)}"}
    )
    assert r.status_code == 200 and r.json()["id"] == user["id"]
    assert graph.get(f"/users/{user['id']}").status_code == 200


def test_expand_manager_on_id_only_rows(graph: httpx.Client, emulator: RunningEmulator) -> None:
    # https://learn.microsoft.com/graph/api/user-list-manager (expand manager on a list): the expansion
    # must come back whatever $select holds, including only `id`.
    rows = graph.get("/users", params={"$select": "id", "$expand": "manager($select=id)", "$top": "999"}).json()[
        "value"
    ]
    with_manager = {r["id"]: r["manager"]["id"] for r in rows if "manager" in r}
    expected = {u.id: u._manager for u in emulator.tenant.live_users() if u._manager}
    assert with_manager and all(with_manager[k] == v for k, v in expected.items() if k in with_manager)
    assert len(with_manager) == sum(1 for r in rows if r["id"] in expected)
