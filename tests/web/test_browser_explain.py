"""Issue 16 in the browser: Sync Settings' Preview (the plan of the unsaved settings, nothing saved,
errors as on Save) and the explain page opened from a person's page, at 1280 and 390 px with axe-core."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from tests.web.conftest import Live, add_account, sign_in
from tests.web.test_browser_review import connect_and_sync, leaves, person_by_entra
from tests.web.ui_checks import HEIGHTS, WIDTHS, axe_violations, overflow, shoot

from entrasync.services import sync_settings

pytestmark = pytest.mark.browser


def _checks(page: Any, name: str) -> None:
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": HEIGHTS[width]})
        assert overflow(page) <= 0, f"{name} scrolls sideways at {width} px"
        assert not axe_violations(page), (name, width, axe_violations(page))
        shoot(page, name, width, full_page=False)
    page.set_viewport_size({"width": 1280, "height": HEIGHTS[1280]})


def test_preview_in_sync_settings(page: Any, live: Live, admin: Any) -> None:
    add_account(live.ctx, "it.admin@example.com", ["it_admin"])
    connect_and_sync(live)
    sign_in(page, live, "it.admin@example.com")
    user = next(u for u in leaves(admin) if u.get("mail"))  # manages nobody: one change only
    local = user["mail"].split("@")[0]

    page.goto(f"{live.url}/user-sync")
    page.get_by_role("button", name="Sync Settings").click()
    dialog = page.get_by_role("dialog", name="Sync Settings")
    dialog.get_by_label("E-mail filter").check()
    dialog.get_by_label("Exclude if e-mail contains").fill(local)
    url = page.url
    with page.expect_response(lambda r: r.url.endswith("/api/v1/settings/preview")) as answer:
        dialog.get_by_role("button", name="Preview").click()
    assert answer.value.status == 200 and answer.value.request.post_data_json["email_exclude"] == [local]

    dialog = page.get_by_role("dialog", name="Sync Settings")
    preview = dialog.locator("#settings-preview")
    expect(preview).to_contain_text("Preview: the plan these settings would produce (not saved)")
    expect(preview).to_contain_text("0 to create, 0 to update, 0 to move, 1 to archive, 0 to restore")
    expect(preview.locator(".preview-changes li")).to_have_count(1)
    expect(preview.locator(".preview-changes li")).to_contain_text(user["mail"])
    expect(dialog.get_by_label("Exclude if e-mail contains")).to_have_value(local)  # the unsaved values stay
    expect(preview).to_be_focused()
    assert page.url == url  # shown in place: the API answered, the page did not reload
    assert sync_settings.load(live.ctx, live.org_id).email_filter_on is False  # nothing saved
    _checks(page, "sync-settings-preview")

    # Invalid settings: the error summary and the field's message, exactly as a Save shows them.
    dialog.get_by_label("Graph API filter").check()
    dialog.get_by_label("Definition").fill("")
    with page.expect_navigation():  # the API's 422: the form is posted, the page shows Save's errors
        dialog.get_by_role("button", name="Preview").click()
    dialog = page.get_by_role("dialog", name="Sync Settings")
    expect(dialog.locator(".error-summary")).to_contain_text("There is 1 problem")
    expect(dialog.locator("#graph_filter-error")).to_contain_text("Enter a Definition")
    expect(dialog.locator("#settings-preview")).to_have_count(0)

    # Without JavaScript the button posts the form: the same preview, rendered by the server.
    dialog.get_by_label("Graph API filter").uncheck()
    page.evaluate("() => document.querySelectorAll('[data-preview-api]').forEach(b => { b._fallback = true; })")
    with page.expect_navigation():
        dialog.get_by_role("button", name="Preview").click()
    dialog = page.get_by_role("dialog", name="Sync Settings")
    expect(dialog.locator("#settings-preview")).to_contain_text("1 to archive, 0 to restore")
    expect(dialog.locator("#settings-preview .preview-changes li")).to_contain_text(user["mail"])

    # Saving the previewed settings gives the plan the preview showed.
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_contain_text("Sync settings saved.")
    assert sync_settings.load(live.ctx, live.org_id).email_exclude == (local.casefold(),)


def test_explain_from_a_person_page(page: Any, live: Live, admin: Any) -> None:
    add_account(live.ctx, "it.admin@example.com", ["it_admin"])
    connect_and_sync(live)
    sign_in(page, live, "it.admin@example.com")
    user = next(u for u in admin.list_users() if u["accountEnabled"] and u.get("mail") and u.get("managerId"))
    admin.update_user(user["id"], jobTitle="Explained Title")
    person = person_by_entra(live, user["id"])

    page.goto(f"{live.url}/people/{person['id']}")
    page.get_by_role("link", name="Explain the sync").click()
    expect(page.get_by_role("heading", name="Explain the sync")).to_be_visible()
    expect(page.locator("#explain-filters")).to_contain_text("In scope? Yes")
    expect(page.locator("#explain-filters")).to_contain_text("Enabled")
    expect(page.locator("#explain-match")).to_contain_text("Linked by Entra object id")
    expect(page.locator("#explain-next")).to_contain_text("update (fields_changed)")
    expect(page.locator("#explain-next table")).to_contain_text("Explained Title")
    _checks(page, "explain")

    # An unknown e-mail: one clear sentence.
    page.get_by_label("E-mail, user principal name or Entra object id").fill("nobody@nowhere.example")
    page.get_by_role("button", name="Explain", exact=True).click()
    expect(page.locator("#explain-problem")).to_contain_text("neither a user in Microsoft Entra ID nor a person")
