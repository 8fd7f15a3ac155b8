"""The Mapping page in the browser (issue 16, spec §12): map a custom field from an extension attribute,
refresh, and the person's page shows it under its label; the page fits 1280 and 390 px and passes axe."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from tests.web.conftest import Live, add_account, press_refresh, sign_in
from tests.web.test_browser_review import connect_and_sync, person_by_entra
from tests.web.ui_checks import HEIGHTS, WIDTHS, axe_violations, overflow, shoot

pytestmark = pytest.mark.browser
ADMIN = "it.admin@example.com"


def test_map_a_custom_field_refresh_and_see_it_on_the_persons_page(page: Any, live: Live, admin: Any) -> None:
    add_account(live.ctx, ADMIN, ["it_admin", "super_admin"])
    connect_and_sync(live)
    sign_in(page, live, ADMIN)

    page.goto(f"{live.url}/user-sync")
    page.get_by_role("link", name="Attribute mapping").click()
    expect(page.get_by_role("heading", name="Attribute mapping", level=1)).to_be_visible()

    # An unknown property: Graph's refusal, in one line, nothing saved.
    page.get_by_label("Entra property").fill("favouriteColour")
    page.get_by_label("Label").fill("Colour")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("favouriteColour")
    expect(page.locator("table")).not_to_contain_text("Colour")

    page.get_by_label("Entra property").fill("onPremisesExtensionAttributes.extensionAttribute1")
    page.get_by_label("Label").fill("Cost centre")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_contain_text("Mapping saved")
    expect(page.locator("tr", has_text="Cost centre")).to_contain_text("extensionAttribute1")

    # An Entra user with a cost centre, changed to a value we can look for.
    user = next(
        u for u in admin.list_users()
        if u["accountEnabled"] and (u.get("onPremisesExtensionAttributes") or {}).get("extensionAttribute1")
    )  # fmt: skip
    admin.update_user(user["id"], onPremisesExtensionAttributes={"extensionAttribute1": "CC-4242"})
    page.goto(f"{live.url}/user-sync")
    press_refresh(page, live)
    person = person_by_entra(live, user["id"])
    assert person["custom_1"] == "CC-4242"
    page.goto(f"{live.url}/people/{person['id']}")
    more = page.get_by_role("region", name="More from Microsoft Entra ID")
    expect(more).to_contain_text("Cost centre")
    expect(more).to_contain_text("CC-4242")
    expect(more).to_contain_text("Start date")

    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": HEIGHTS[width]})
        for name, path in (("mapping", "/user-sync/mapping"), ("person-more", f"/people/{person['id']}")):
            page.goto(live.url + path)
            shoot(page, name, width)
            assert overflow(page) <= 0, f"{name} scrolls sideways at {width}px"
            problems = axe_violations(page)
            assert not problems, "\n".join(problems)
