"""Issue 16.1: People filters on employee type, company, city and country (spec §12 "in People filters
where useful"), through the API, the People page and the CLI, against the directory itself as oracle."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.security.conftest import set_password
from tests.web.conftest import add_account, sign_in_client
from tests.web.test_api import bearer, connect

from entrasync.errors import ValidationError
from entrasync.services import people_facets
from entrasync.services.context import AppContext


def _everyone(client: TestClient, h: dict[str, str], query: str = "") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    url = f"/api/v1/people?limit=500{query}"
    while url:
        page = client.get(url, headers=h)
        assert page.status_code == 200, page.text
        body = page.json()
        out += body["items"]
        url = f"/api/v1/people?limit=500{query}&after={body['next_cursor']}" if body["next_cursor"] else ""
    return out


def test_people_filter_by_employee_type_company_city_and_country(
    client: TestClient, app_ctx: AppContext, emulator: Any
) -> None:
    org = app_ctx.org_id()
    h = bearer(app_ctx, add_account(app_ctx, "it@example.com", ["it_admin"]))
    connect(app_ctx, emulator)
    assert client.post("/api/v1/refresh", headers=h).json()["outcome"] == "applied"
    everyone = _everyone(client, h)
    assert len(everyone) > 50
    offered = people_facets.facet_values(app_ctx, org)
    assert set(offered) == {"employee_type", "company_name", "city", "country"}, "the sample fills all four"
    for name, values in offered.items():
        held = Counter(p[name] for p in everyone if p[name])
        assert values == sorted(held), name  # exactly the values active people hold
        value, count = held.most_common(1)[0]
        assert 0 < count < len(everyone)
        # Any case: "contoso" finds "Contoso".
        got = _everyone(client, h, f"&{name}={value.swapcase()}")
        want = sorted(p["id"] for p in everyone if (p[name] or "").lower() == value.lower())
        assert sorted(p["id"] for p in got) == want
    # Filters combine (AND), with the other filters too.
    city = Counter(p["city"] for p in everyone if p["city"]).most_common(1)[0][0]
    kinds = Counter(p["employee_type"] for p in everyone if p["city"] == city and p["employee_type"])
    kind = kinds.most_common(1)[0][0]
    both = _everyone(client, h, f"&city={city}&employee_type={kind}")
    assert both and all(p["city"] == city and p["employee_type"] == kind for p in both)
    assert len(both) == sum(1 for p in everyone if p["city"] == city and p["employee_type"] == kind)
    assert _everyone(client, h, "&country=Atlantis") == []

    # The People page: an employee sees the filters (these fields are everyone's) and the same count.
    employee = next(p for p in everyone if not p.get("roles"))
    set_password(app_ctx, employee["id"])
    sign_in_client(client, employee["email"])
    assert client.get("/api/v1/me").json()["roles"] == []
    page = client.get("/people").text
    for label in ("Employee type", "Company", "City", "Country"):
        assert f">{label}</label>" in page
    assert f"<option>{city}</option>" in page
    filtered = client.get("/people", params={"city": city.upper(), "employee_type": kind}).text
    total = int(re.search(r'<p class="total" role="status">(\d+) ', filtered).group(1))  # type: ignore[union-attr]
    assert total == len(both)
    assert f"<option selected>{kind}</option>" in filtered and 'href="/people">Clear</a>' in filtered
    empty = client.get("/people", params={"country": "Atlantis"}).text
    assert "with country Atlantis" in empty and "Clear the filters" in empty


def test_an_unknown_people_filter_is_refused_with_the_ones_there_are() -> None:
    with pytest.raises(ValidationError) as caught:
        people_facets.facets_of({"shoe_size": "44"})
    said = str(caught.value.errors)
    assert "'shoe_size' is not a People filter: use employee_type, company_name, city, country" in said
    assert people_facets.facets_of({"city": "  Oslo\x00 ", "country": ""}) == {"city": "Oslo"}
