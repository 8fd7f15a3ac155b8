"""The help article's steps 1–15 end to end in Chromium, as an IT admin, then Disconnect."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from tests.web.conftest import Live, add_account, shot, sign_in

from entrasync.adapters.db import tables as t

pytestmark = pytest.mark.browser


def connect_through_microsoft(page: Any, account: str = "Adele Vance") -> None:
    """Integrations → Connect → Continue to Microsoft → the emulator's sign-in and consent pages."""
    page.get_by_role("button", name="Settings", exact=True).click()
    page.get_by_role("menuitem", name="Integrations").click()
    page.get_by_role("tab", name="Microsoft Entra ID").click()
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_text("User.Read.All")).to_be_visible()
    expect(page.get_by_text("GroupMember.Read.All")).to_be_visible()
    page.get_by_role("button", name="Continue to Microsoft").click()
    # Microsoft sign-in (OIDC), then the admin-consent sign-in and the consent page.
    page.get_by_role("button", name=re.compile(account)).click()
    page.get_by_role("button", name=re.compile(account)).click()
    expect(page.get_by_role("heading", name="Permissions requested")).to_be_visible()
    page.get_by_role("button", name="Accept").click()


def people_total(page: Any) -> int:
    text = page.locator(".total").inner_text()
    m = re.fullmatch(r"(\d+) (people|person)", text.strip())
    assert m, text
    return int(m.group(1))


def test_seed_steps_1_to_15_then_disconnect(page: Any, live: Live, admin: Any) -> None:
    ctx = live.ctx
    add_account(ctx, "it.admin@example.com", ["it_admin"], "Ian Admin")
    hr_id = add_account(ctx, "hr.lead@example.com", ["super_admin"], "Hana Recipient")
    summary = admin.tenant_summary()
    enabled = [u for u in admin.list_users() if u.get("accountEnabled", True)]

    # 1. Log in; set my own time zone first (the dialog shows the refresh time in it).
    sign_in(page, live, "it.admin@example.com")
    shot(page, "people-empty")
    page.goto(f"{live.url}/me")
    page.get_by_label("Time zone").select_option("Europe/London")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Your time zone is now Europe/London.")).to_be_visible()

    # 2–6. Cog → Integrations → Microsoft Entra ID tab → Connect → Microsoft sign-in → Accept.
    page.goto(f"{live.url}/people")
    connect_through_microsoft(page)
    expect(page.get_by_text("Microsoft Entra ID is connected to entrasync.")).to_be_visible()
    expect(page.locator("#entra-status")).to_have_text("Microsoft Entra ID is connected to entrasync.")
    shot(page, "integrations-connected")

    # 7. View details opens User Sync; 8. Refresh syncs everyone (Auto-sync by default).
    page.get_by_role("button", name="View details").click()
    expect(page.get_by_role("heading", name="User Sync - Microsoft Entra ID")).to_be_visible()
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator(".run-summary")).to_contain_text("applied", timeout=60_000)
    created = len(enabled)
    # Applied at once: nothing waits in the tabs, everyone synced is Matched (issue 17: not the applied plan).
    expect(page.get_by_role("tab", name="Microsoft Entra ID only (0)")).to_be_visible()
    expect(page.get_by_role("tab", name=f"Matched ({created})")).to_be_visible()
    shot(page, "user-sync-after-refresh")

    # The people appear in People (plus the two local accounts, kept as admins) and in the team tree.
    page.get_by_role("link", name="People", exact=True).click()
    expect(page.get_by_role("heading", name="People")).to_be_visible()
    assert people_total(page) == created + 2
    page.get_by_label("Search people").fill("Adele")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("link", name="Adele Vance")).to_be_visible()
    shot(page, "people")
    page.get_by_role("link", name="Organisation").click()
    tops = page.locator("ul.tree > li")
    assert tops.count() >= 1
    page.locator("ul.tree a.button").first.click()
    expect(page.get_by_role("heading", name=re.compile("'s team$"))).to_be_visible()
    assert page.locator("ul.tree > li").count() >= 1
    shot(page, "organisation")

    # 8–15. Sync Settings: every toggle and field, Save, reopen.
    page.goto(f"{live.url}/user-sync")
    page.get_by_role("button", name="Sync Settings").click()
    dialog = page.get_by_role("dialog", name="Sync Settings")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Daily refresh").check()
    dialog.get_by_label("Refresh time").select_option("07:30")
    expect(dialog.get_by_text("TZ: Europe/London")).to_be_visible()
    dialog.get_by_label("Manual comparison").check()
    dialog.get_by_label("Send notification on refresh").check()
    dialog.get_by_label("Recipient").select_option(str(hr_id))
    dialog.get_by_label("Graph API filter").check()
    dept = summary["departments"][0]
    dialog.get_by_label("Definition").fill(f"department eq '{dept}'")
    dialog.get_by_label("E-mail filter").check()
    dialog.get_by_label("Include if e-mail contains").fill("@contoso.com")
    dialog.get_by_label("Exclude if e-mail contains").fill("test, noreply")
    dialog.get_by_label("Group filter").check()
    group_ids = [g["id"] for g in summary["groups"][:2]]
    dialog.get_by_label("Group IDs").fill(", ".join(group_ids))
    dialog.get_by_label("Safety guard (%)").fill("15")
    shot(page, "sync-settings-dialog", full_page=False)
    dialog.get_by_role("button", name="Save").click()
    in_dept = sum(1 for u in admin.list_users() if u.get("department") == dept)
    expect(page.locator(".flash")).to_contain_text(f"{in_dept} users match" if in_dept != 1 else "1 user matches")

    page.get_by_role("button", name="Sync Settings").click()
    dialog = page.get_by_role("dialog", name="Sync Settings")
    expect(dialog.get_by_label("Daily refresh")).to_be_checked()
    expect(dialog.get_by_label("Refresh time")).to_have_value("07:30")
    expect(dialog.get_by_label("Manual comparison")).to_be_checked()
    expect(dialog.get_by_label("Send notification on refresh")).to_be_checked()
    expect(dialog.get_by_label("Recipient")).to_have_value(str(hr_id))
    expect(dialog.get_by_label("Graph API filter")).to_be_checked()
    expect(dialog.get_by_label("Definition")).to_have_value(f"department eq '{dept}'")
    expect(dialog.get_by_label("E-mail filter")).to_be_checked()
    expect(dialog.get_by_label("Include if e-mail contains")).to_have_value("@contoso.com")
    expect(dialog.get_by_label("Exclude if e-mail contains")).to_have_value("test, noreply")
    expect(dialog.get_by_label("Group filter")).to_be_checked()
    expect(dialog.get_by_label("Group IDs")).to_have_value(", ".join(g.lower() for g in group_ids))
    expect(dialog.get_by_label("Safety guard (%)")).to_have_value("15")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    with ctx.db.engine.connect() as conn:
        saved = conn.execute(sa.select(t.sync_settings).where(t.sync_settings.c.org_id == live.org_id)).one()._mapping
    assert (saved["strategy"], saved["refresh_time"], saved["time_zone"]) == ("daily", "07:30", "Europe/London")
    assert (saved["mode"], saved["notify"], saved["recipient_id"]) == ("manual", True, hr_id)
    assert saved["guard_percent"] == 15.0

    # Stop the sync: Disconnect archives nobody.
    page.get_by_role("button", name="Settings", exact=True).click()
    page.get_by_role("menuitem", name="Integrations").click()
    page.on("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Disconnect").click()
    expect(page.locator("#entra-status")).to_have_text("Not connected")
    expect(page.get_by_role("button", name="Connect")).to_be_visible()
    with ctx.db.engine.connect() as conn:
        archived = conn.execute(
            sa.select(sa.func.count()).select_from(t.people).where(t.people.c.status == "archived")
        ).scalar_one()
    assert archived == 0
    page.goto(f"{live.url}/people")
    assert people_total(page) == created + 2

    # Phone width: the main pages still work.
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "people-phone", full_page=False)
    sideways = page.evaluate(
        "() => { const w = document.querySelector('.table-wrap'); return w.scrollWidth - w.clientWidth; }"
    )
    assert sideways <= 0, f"the People table scrolls sideways by {sideways}px at phone width"
    expect(page.get_by_role("columnheader", name="Status")).to_be_visible()
    page.goto(f"{live.url}/user-sync?tab=history")
    expect(page.get_by_role("tab", name="History")).to_be_visible()
    shot(page, "user-sync-phone", full_page=False)
