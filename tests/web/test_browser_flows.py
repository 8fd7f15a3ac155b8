"""The admin's flows that must not surprise (issue 17): Cancel at Microsoft lands back on Integrations
with Microsoft's error and what to do; Sync Settings moves focus to what happened (the error summary
after a failed Save, the status message after a successful one), keeps the tab behind it, closes with
×, and its pinned Save bar never hides the Safety guard hint; a held plan asks before Apply, with its
counts, in a dialog (and on a step page without JavaScript)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from tests.web.conftest import Live, add_account, sign_in
from tests.web.test_browser_review import leaves
from tests.web.ui_checks import axe_violations, shoot

from entrasync.adapters.db import tables as t
from entrasync.emulator.admin_client import AdminClient
from entrasync.services import connection, sync
from entrasync.services.context import Actor

pytestmark = pytest.mark.browser
ADMIN = "ian.admin@example.com"


@pytest.fixture(scope="module")
def admin_api(module_live: Live) -> Iterator[AdminClient]:
    info = module_live.emulator.info
    with AdminClient(info.admin_url, info.ca_bundle) as client:
        yield client


@pytest.fixture(scope="module")
def accounts(module_live: Live) -> dict[str, int]:
    ctx = module_live.ctx
    return {
        "ian": add_account(ctx, ADMIN, ["super_admin", "it_admin"], "Ian Admin"),
        "adele": add_account(ctx, "adele.vance@contoso.com", ["super_admin"], "Adele Vance"),
    }


@pytest.fixture
def page_as_ian(browser: Any, module_live: Live, accounts: dict[str, int]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, ignore_https_errors=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    sign_in(page, module_live, ADMIN)
    yield page
    context.close()


def test_cancel_on_microsoft_sign_in_returns_to_integrations(page_as_ian: Any, module_live: Live) -> None:
    """First in the module: nothing is connected yet."""
    page = page_as_ian
    page.get_by_role("button", name="Settings", exact=True).click()
    page.get_by_role("menuitem", name="Integrations").click()
    page.get_by_role("button", name="Connect").click()
    page.get_by_role("button", name="Continue to Microsoft").click()
    expect(page.get_by_role("button", name=re.compile("Adele Vance"))).to_be_visible()
    page.get_by_role("button", name="Cancel").click()  # on Microsoft's sign-in page
    expect(page).to_have_url(re.compile(r"/integrations$"))
    problem = page.locator(".problem")
    expect(problem).to_contain_text("Microsoft said: AADSTS65004: User declined to consent")
    expect(problem).to_contain_text("What to do:")
    expect(problem).to_contain_text("press Connect again")
    expect(page.locator("#entra-status")).to_have_text("Not connected")
    assert page.evaluate("() => document.activeElement.classList.contains('problem')")
    shoot(page, "integrations-cancelled", 1280)
    assert not axe_violations(page)
    page.reload()  # the message was for that answer only; reloading is safe and quiet
    expect(page.locator(".problem")).to_have_count(0)


def test_declined_consent_says_what_to_do(page_as_ian: Any, module_live: Live) -> None:
    page = page_as_ian
    page.goto(f"{module_live.url}/integrations/entra/connect")
    page.get_by_role("button", name="Continue to Microsoft").click()
    page.get_by_role("button", name=re.compile("Adele Vance")).click()
    page.get_by_role("button", name=re.compile("Adele Vance")).click()
    page.get_by_role("button", name="Cancel").click()  # on the consent page
    expect(page).to_have_url(re.compile(r"/integrations$"))
    expect(page.locator(".error-message")).to_contain_text("declined")
    expect(page.locator(".problem")).to_contain_text("choose Accept")


def test_connecting_names_the_microsoft_admin_who_consented(page_as_ian: Any, module_live: Live) -> None:
    page = page_as_ian
    page.goto(f"{module_live.url}/integrations/entra/connect")
    page.get_by_role("button", name="Continue to Microsoft").click()
    page.get_by_role("button", name=re.compile("Adele Vance")).click()
    page.get_by_role("button", name=re.compile("Adele Vance")).click()
    page.get_by_role("button", name="Accept").click()
    expect(page.locator("#entra-status")).to_have_text("Microsoft Entra ID is connected to entrasync.")
    expect(page.locator(".integration-main")).to_contain_text("connected by Adele Vance (adele.vance@contoso.com)")
    expect(page.locator(".integration-main")).not_to_contain_text(ADMIN)


@pytest.fixture(scope="module")
def connected(module_live: Live, accounts: dict[str, int]) -> None:
    info = module_live.emulator.info
    ctx = module_live.ctx
    connection.connect(ctx, module_live.org_id, Actor.cli(),
                       connection.Credentials(info.tenant_id, info.client_id, info.client_secret))  # fmt: skip
    assert sync.refresh(ctx, module_live.org_id, trigger="cli", actor=Actor.cli()).outcome == "applied"


def _open_settings(page: Any) -> Any:
    page.get_by_role("button", name="Sync Settings").click()
    dialog = page.get_by_role("dialog", name="Sync Settings")
    expect(dialog).to_be_visible()
    return dialog


def test_failed_save_focuses_the_counted_error_summary_and_keeps_the_tab(
    page_as_ian: Any, module_live: Live, connected: None
) -> None:
    page = page_as_ian
    page.goto(f"{module_live.url}/user-sync?tab=differences")
    dialog = _open_settings(page)
    dialog.get_by_label("Group filter").check()
    dialog.get_by_label("Group IDs").fill("not-a-guid")
    dialog.get_by_label("Safety guard (%)").fill("250")
    dialog.get_by_role("button", name="Save").click()
    dialog = page.get_by_role("dialog", name="Sync Settings")
    expect(dialog).to_be_visible()
    summary = dialog.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("heading")).to_have_text("There are 2 problems to fix")
    links = summary.get_by_role("link")
    expect(links).to_have_count(2)
    assert [links.nth(i).get_attribute("href") for i in range(2)] == ["#group_ids", "#guard_percent"]
    links.nth(1).click()
    expect(dialog.get_by_label("Safety guard (%)")).to_be_focused()
    # The page behind the dialog is still the tab the admin was on.
    expect(page.get_by_role("tab", name=re.compile("^Differences"))).to_have_attribute("aria-selected", "true")
    shoot(page, "sync-settings-failed-save", 1280, full_page=False)
    assert not axe_violations(page)


def test_successful_save_focuses_the_status_message(page_as_ian: Any, module_live: Live, connected: None) -> None:
    page = page_as_ian
    page.goto(f"{module_live.url}/user-sync?tab=matched")
    dialog = _open_settings(page)
    dialog.get_by_label("Safety guard (%)").fill("12")
    dialog.get_by_role("button", name="Save").click()
    status = page.get_by_role("status").filter(has_text="Sync settings saved.")
    expect(status).to_be_focused()
    assert page.evaluate("() => document.activeElement !== document.body")
    expect(page.get_by_role("tab", name=re.compile("^Matched"))).to_have_attribute("aria-selected", "true")


def test_dialog_closes_with_its_close_button(page_as_ian: Any, module_live: Live, connected: None) -> None:
    page = page_as_ian
    page.goto(f"{module_live.url}/user-sync")
    dialog = _open_settings(page)
    dialog.get_by_label("Safety guard (%)").fill("42")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("button", name="Sync Settings")).to_be_focused()
    dialog = _open_settings(page)
    expect(dialog.get_by_label("Safety guard (%)")).not_to_have_value("42")  # closing forgot the edit
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_sync_settings_work_without_javascript(browser: Any, module_live: Live, connected: None) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, module_live, ADMIN)
        page.goto(f"{module_live.url}/user-sync?tab=matched")
        page.get_by_role("button", name="Sync Settings").click()  # a link: the page comes back with it open
        dialog = page.get_by_role("dialog", name="Sync Settings")
        expect(dialog).to_be_visible()
        dialog.get_by_label("Safety guard (%)").fill("11")
        dialog.get_by_role("button", name="Save").click()
        expect(page.locator(".flash")).to_contain_text("Sync settings saved.")
        expect(page.get_by_role("tab", name=re.compile("^Matched"))).to_have_attribute("aria-selected", "true")
        expect(page.get_by_role("dialog", name="Sync Settings")).to_be_hidden()
    finally:
        context.close()


@pytest.mark.parametrize("size", [(1280, 900), (390, 844), (1280, 560)])
def test_pinned_save_bar_never_covers_the_safety_guard_hint(
    page_as_ian: Any, module_live: Live, connected: None, size: tuple[int, int]
) -> None:
    page = page_as_ian
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.goto(f"{module_live.url}/user-sync")
    dialog = _open_settings(page)
    hint = dialog.locator("#guard-hint")
    hint.scroll_into_view_if_needed()
    dialog.get_by_label("Safety guard (%)").focus()
    box, bar = hint.bounding_box(), dialog.locator(".modal-foot").bounding_box()
    assert box is not None and bar is not None
    assert box["y"] + box["height"] <= bar["y"], (box, bar)
    expect(dialog.get_by_label("Safety guard (%)")).to_have_attribute("aria-describedby", re.compile("guard-hint"))
    if size[0] == 390:
        shoot(page, "sync-settings-dialog", 390, full_page=False)


def test_held_plan_asks_before_apply_with_its_counts(
    page_as_ian: Any, module_live: Live, connected: None, admin_api: AdminClient, browser: Any
) -> None:
    """Last in the module: it archives people."""
    page = page_as_ian
    for u in leaves(admin_api)[:7]:
        admin_api.disable_user(u["id"])
    page.goto(f"{module_live.url}/user-sync")
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator(".run-summary")).to_contain_text("waits for your review", timeout=60_000)
    expect(page.locator(".warning", has_text="Held for review")).to_be_visible()
    page.get_by_role("tab", name="entrasync only (7)").click()
    page.locator("tr", has_text="Archive").first.get_by_role("button", name="Reject").click()

    # Without JavaScript, Apply shows a step page with the counts first.
    nojs = browser.new_context(java_script_enabled=False)
    try:
        other = nojs.new_page()
        sign_in(other, module_live, ADMIN)
        other.goto(f"{module_live.url}/user-sync")
        other.get_by_role("button", name="Apply", exact=True).click()
        expect(other.get_by_role("heading", level=1)).to_contain_text("Apply the plan of run")
        expect(other.locator(".apply-counts .archive .n")).to_have_text("6")
        shoot(other, "apply-confirm-step", 1280)
    finally:
        nojs.close()
    with module_live.ctx.db.engine.connect() as conn:
        archived = conn.execute(sa.select(sa.func.count()).select_from(t.people).where(t.people.c.status == "archived"))
        assert archived.scalar_one() == 0  # the step page applied nothing

    page.reload()
    page.get_by_role("button", name="Apply", exact=True).click()
    dialog = page.get_by_role("dialog", name=re.compile("Apply the plan of run"))
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("The safety guard held this plan.")
    expect(dialog.locator(".apply-counts .archive .n")).to_have_text("6")
    expect(dialog).to_contain_text("6 of these are not decided yet")
    expect(dialog).to_contain_text("1 rejected change will not be applied")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    shoot(page, "apply-dialog", 1280, full_page=False)
    assert not axe_violations(page)
    dialog.get_by_role("button", name="Close").click()  # × closes without applying
    expect(dialog).to_be_hidden()
    page.get_by_role("button", name="Apply", exact=True).click()
    page.keyboard.press("Tab")  # from Cancel to the confirming button, by keyboard
    expect(dialog.get_by_role("button", name="Apply 6 changes")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("applied: 6 archived")
    expect(page.locator(".flash")).to_contain_text("1 rejected change will not be proposed again")
    with module_live.ctx.db.engine.connect() as conn:
        archived = conn.execute(sa.select(sa.func.count()).select_from(t.people).where(t.people.c.status == "archived"))
        assert archived.scalar_one() == 6
