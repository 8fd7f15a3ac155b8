"""The §12 user properties: employeeHireDate, employeeType, companyName, city, country, phones,
preferredLanguage, onPremisesExtensionAttributes and directory extensions, through list, get, delta,
$filter and the admin API; unknown $select names refused as Graph does."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from entrasync.emulator.admin_client import AdminClient
from entrasync.emulator.server import EmulatorInfo, RunningEmulator

from .conftest import app_token, assert_graph_error, follow

EVENTUAL = {"ConsistencyLevel": "eventual"}
NEW = "employeeHireDate,employeeType,companyName,city,country,mobilePhone,businessPhones,preferredLanguage"
ON_PREM = "onPremisesExtensionAttributes"


def _extensions(emulator: RunningEmulator) -> tuple[str, str]:
    cost, grade = (p["name"] for p in emulator.tenant.extension_properties)
    return cost, grade


def test_new_properties_only_on_select_and_realistic(graph: httpx.Client, emulator: RunningEmulator) -> None:
    # https://learn.microsoft.com/graph/api/resources/user#properties ("Returned only on $select")
    default_row = graph.get("/users", params={"$top": "1"}).json()["value"][0]
    assert not {"employeeHireDate", "employeeType", "companyName", "city", "country", ON_PREM} & set(default_row)
    cost, grade = _extensions(emulator)
    rows, _ = follow(graph, f"/users?$top=999&$select={NEW},{ON_PREM},{cost},{grade}")
    assert len(rows) == len(emulator.tenant.users)
    for prop in ("employeeHireDate", "employeeType", "companyName", "city", "country", "mobilePhone"):
        empty = sum(r[prop] is None for r in rows) / len(rows)
        assert 0.08 < empty < 0.25, (prop, empty)
    assert 0.08 < sum(r["businessPhones"] == [] for r in rows) / len(rows) < 0.25
    assert all(isinstance(r["businessPhones"], list) and len(r["businessPhones"]) <= 1 for r in rows)
    hires = [r["employeeHireDate"] for r in rows if r["employeeHireDate"]]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT00:00:00Z", h) for h in hires)
    assert {"Employee", "Contractor", "Intern"} <= {r["employeeType"] for r in rows}
    assert {"de-DE", "en-US", "fr-FR"} <= {r["preferredLanguage"] for r in rows}
    assert "Germany" in {r["country"] for r in rows} and "Contoso" in {r["companyName"] for r in rows}
    attrs = [r[ON_PREM] for r in rows]
    assert all(set(a) == {f"extensionAttribute{i}" for i in range(1, 16)} for a in attrs)
    assert 0.6 < sum(a["extensionAttribute1"] is not None for a in attrs) / len(attrs) < 0.9
    assert all(a["extensionAttribute15"] is None for a in attrs)
    # A directory extension the user has no value for is left out, not null.
    with_cost = [r for r in rows if cost in r]
    assert 0.7 < len(with_cost) / len(rows) < 0.95 and all(r[cost] for r in with_cost)
    assert any(grade in r for r in rows)


def test_get_one_user_with_new_properties(graph: httpx.Client, emulator: RunningEmulator) -> None:
    cost, _ = _extensions(emulator)
    user = next(u for u in emulator.tenant.live_users() if u._ext and cost in u._ext and u.employeeType)
    row = graph.get(f"/users/{user.id}", params={"$select": f"id,employeeType,{ON_PREM},{cost}"}).json()
    assert row["employeeType"] == user.employeeType and row[cost] == user._ext[cost]
    assert row[ON_PREM] == user.onPremisesExtensionAttributes
    assert row["@odata.context"].endswith("$metadata#users/$entity")


@pytest.mark.parametrize("path", ["/users", "/users/delta", "USER"])
def test_unknown_select_is_refused_everywhere(graph: httpx.Client, emulator: RunningEmulator, path: str) -> None:
    # Graph parses $select against the user type: an unknown name fails the whole request.
    if path == "USER":
        path = f"/users/{next(iter(emulator.tenant.users))}"
    err = assert_graph_error(graph.get(path, params={"$select": "id,shoeSize"}), 400, "BadRequest")
    assert err["message"] == (
        "Parsing OData Select and Expand failed: Could not find a property named 'shoeSize' on type "
        "'microsoft.graph.user'."
    )
    unregistered = "extension_00000000000000000000000000000000_costCenter"
    err = assert_graph_error(graph.get(path, params={"$select": f"id,{unregistered}"}), 400, "BadRequest")
    assert unregistered in err["message"]
    # "the individual extension attributes are neither selectable nor filterable" (user resource): only whole
    assert_graph_error(graph.get(path, params={"$select": f"{ON_PREM}/extensionAttribute1"}), 400, "BadRequest")


def test_select_names_are_case_insensitive(graph: httpx.Client, emulator: RunningEmulator) -> None:
    cost, _ = _extensions(emulator)
    row = graph.get("/users", params={"$top": "1", "$select": f"EMPLOYEETYPE,{cost.upper()}"}).json()["value"][0]
    assert "employeeType" in row


def _ids(graph: httpx.Client, flt: str, advanced: bool) -> set[str]:
    params = {"$filter": flt, "$select": "id", "$top": "999"}
    headers = {}
    if advanced:
        params["$count"] = "true"
        headers = EVENTUAL
    rows, _ = follow(graph, "/users?" + "&".join(f"{k}={v}" for k, v in params.items()), headers=headers)
    return {r["id"] for r in rows}


def test_filters_on_new_properties_follow_the_advanced_query_table(
    graph: httpx.Client, emulator: RunningEmulator
) -> None:
    # https://learn.microsoft.com/graph/aad-advanced-queries (filter table for directory objects)
    users = list(emulator.tenant.live_users())
    assert _ids(graph, "country eq 'Germany'", False) == {u.id for u in users if u.country == "Germany"}
    assert _ids(graph, "startsWith(city,'Kra')", False) == {u.id for u in users if u.city == "Kraków"}
    for flt in (
        "employeeType eq 'Contractor'",
        "companyName eq 'Contoso'",
        "employeeHireDate ge 2020-01-01T00:00:00Z",
        f"{ON_PREM}/extensionAttribute1 eq 'CC-1000'",
    ):
        assert_graph_error(graph.get("/users", params={"$filter": flt}), 400, "Request_UnsupportedQuery")
    assert _ids(graph, "employeeType eq 'Contractor'", True) == {u.id for u in users if u.employeeType == "Contractor"}
    assert _ids(graph, "companyName eq 'contoso'", True) == {u.id for u in users if u.companyName == "Contoso"}
    hired = {u.id for u in users if u.employeeHireDate and u.employeeHireDate >= "2020-01-01"}
    assert hired and _ids(graph, "employeeHireDate ge 2020-01-01T00:00:00Z", True) == hired
    cc = {u.id for u in users if u.onPremisesExtensionAttributes["extensionAttribute1"] == "CC-1000"}
    assert cc and _ids(graph, f"{ON_PREM}/extensionAttribute1 eq 'CC-1000'", True) == cc
    assert_graph_error(
        graph.get(
            "/users",
            params={"$filter": f"startsWith({ON_PREM}/extensionAttribute1,'CC')", "$count": "true"},
            headers=EVENTUAL,
        ),
        400,
        "Request_UnsupportedQuery",
    )
    cost, _ = _extensions(emulator)
    with_cost = {u.id for u in users if u._ext and u._ext.get(cost) == "CC-1100"}
    assert with_cost and _ids(graph, f"{cost} eq 'CC-1100'", False) == with_cost
    # Existing behaviour stays: department eq is a default query.
    assert _ids(graph, "department eq 'Sales'", False) == {u.id for u in users if u.department == "Sales"}


def test_extension_definitions_need_application_read(
    graph: httpx.Client, admin: AdminClient, info: EmulatorInfo, emulator: RunningEmulator
) -> None:
    # https://learn.microsoft.com/graph/api/application-list-extensionproperty
    app = emulator.tenant.extension_app
    assert_graph_error(graph.get(f"/applications/{app['id']}/extensionProperties"), 403, "Authorization_RequestDenied")
    admin.set_app_permissions(["User.Read.All", "GroupMember.Read.All", "Application.Read.All"])
    headers = {"Authorization": f"Bearer {app_token(info)}"}
    listed = graph.get(f"/applications/{app['id']}/extensionProperties", headers=headers).json()["value"]
    names = [p["name"] for p in listed]
    assert names == [p["name"] for p in emulator.tenant.extension_properties]
    assert all(n.startswith(f"extension_{app['appId'].replace('-', '')}_") for n in names)
    assert {p["dataType"] for p in listed} == {"String"} and all(p["targetObjects"] == ["User"] for p in listed)
    by_app_id = graph.get(f"/applications(appId='{app['appId']}')/extensionProperties", headers=headers)
    assert [p["name"] for p in by_app_id.json()["value"]] == names
    filtered = graph.get(
        f"/applications/{app['id']}/extensionProperties", params={"$filter": f"name eq '{names[1]}'"}, headers=headers
    )
    assert [p["name"] for p in filtered.json()["value"]] == [names[1]]
    available = graph.post("/directoryObjects/getAvailableExtensionProperties", json={}, headers=headers).json()
    assert {p["name"] for p in available["value"]} == set(names)
    assert_graph_error(
        graph.get("/applications/not-an-app/extensionProperties", headers=headers), 404, "Request_ResourceNotFound"
    )


def _user(admin: AdminClient, **props: Any) -> dict[str, Any]:
    return admin.create_user(**props)


def test_admin_sets_new_properties_and_merges_extension_attributes(
    admin: AdminClient, emulator: RunningEmulator, graph: httpx.Client
) -> None:
    cost, grade = _extensions(emulator)
    created = _user(
        admin,
        displayName="Hire Date Person",
        mailNickname="hire.date.person",
        employeeHireDate="2023-09-01T00:00:00Z",
        employeeType="Intern",
        businessPhones=["+49 30 2345 0001"],
        onPremisesExtensionAttributes={"extensionAttribute1": "CC-9000", "extensionAttribute3": "x"},
        **{cost: "CC-9000"},
    )
    assert created["employeeType"] == "Intern" and created[cost] == "CC-9000" and grade not in created
    assert created[ON_PREM]["extensionAttribute1"] == "CC-9000" and created[ON_PREM]["extensionAttribute2"] is None
    patched = admin.update_user(
        created["id"], onPremisesExtensionAttributes={"extensionAttribute1": "CC-9100"}, **{grade: "G7"}
    )
    assert patched[ON_PREM]["extensionAttribute1"] == "CC-9100" and patched[ON_PREM]["extensionAttribute3"] == "x"
    assert patched[grade] == "G7" and patched[cost] == "CC-9000"
    cleared = admin.update_user(created["id"], **{cost: None}, onPremisesExtensionAttributes=None)
    assert cost not in cleared and all(v is None for v in cleared[ON_PREM].values())
    row = graph.get(f"/users/{created['id']}", params={"$select": f"{cost},{grade},employeeHireDate"}).json()
    assert cost not in row and row[grade] == "G7" and row["employeeHireDate"] == "2023-09-01T00:00:00Z"
    for bad in ({"shoeSize": 4}, {"extension_0000_x": "y"}, {ON_PREM: {"extensionAttribute16": "x"}}, {grade: 7}):
        with pytest.raises(RuntimeError, match="400"):
            admin.update_user(created["id"], **bad)


def test_delta_carries_new_properties_and_extension_attribute_changes(
    graph: httpx.Client, admin: AdminClient, emulator: RunningEmulator
) -> None:
    # https://learn.microsoft.com/graph/delta-query-users: changed properties come back; complex ones whole
    cost, _ = _extensions(emulator)
    select = f"id,displayName,employeeType,{ON_PREM},{cost}"
    link = None
    next_url: str | None = f"/users/delta?$select={select}"
    while next_url:
        body = graph.get(next_url).json()
        next_url = body.get("@odata.nextLink")
        link = body.get("@odata.deltaLink")
    assert link
    mover = next(u for u in emulator.tenant.live_users() if u._ext and cost in u._ext and u.employeeType)
    admin.update_user(mover.id, onPremisesExtensionAttributes={"extensionAttribute2": "AMER"}, **{cost: None})
    joiner = _user(admin, displayName="Delta Joiner", mailNickname="delta.joiner", employeeType="Vendor")
    rows, _ = follow(graph, link)
    by_id = {r["id"]: r for r in rows}
    moved = by_id[mover.id]
    assert moved[ON_PREM]["extensionAttribute2"] == "AMER" and len(moved[ON_PREM]) == 15
    assert moved[cost] is None  # cleared: null in delta
    assert by_id[joiner["id"]]["employeeType"] == "Vendor"
