"""Review in the browser (Manual comparison), who may connect, and notifications (§2, §4.5, §6)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from tests.web.conftest import PASSWORD, Live, add_account, press_refresh, shot, sign_in
from tests.web.test_browser_setup import connect_through_microsoft

from entrasync.adapters.db import tables as t
from entrasync.services import accounts, api_tokens, connection, people, sync, sync_settings
from entrasync.services.context import Actor

pytestmark = pytest.mark.browser


def connect_and_sync(live: Live) -> None:
    info = live.emulator.info
    ctx = live.ctx
    connection.connect(ctx, live.org_id, Actor.cli(), connection.Credentials(info.tenant_id, info.client_id,
                                                                             info.client_secret))  # fmt: skip
    result = sync.refresh(ctx, live.org_id, trigger="cli", actor=Actor.cli())
    assert result.outcome == "applied", result


def leaves(admin: Any) -> list[dict[str, Any]]:
    """Enabled users nobody reports to, other than the sign-in admins (safe to move or disable)."""
    users = admin.list_users()
    managers = {u.get("managerId") for u in users}
    admin_ids = {a["id"] for a in admin.tenant_summary().get("admins", []) if isinstance(a, dict)}
    return [
        u for u in users
        if u["id"] not in managers and u.get("accountEnabled", True) and u["id"] not in admin_ids
        and u.get("managerId")
    ]  # fmt: skip


def person_by_entra(live: Live, entra_id: str) -> dict[str, Any]:
    with live.ctx.db.engine.connect() as conn:
        row = conn.execute(sa.select(t.people).where(t.people.c.entra_id == entra_id)).one()
        return dict(row._mapping)


def test_review_reject_one_accept_rest_apply(page: Any, live: Live, admin: Any) -> None:
    add_account(live.ctx, "it.admin@example.com", ["it_admin"])
    connect_and_sync(live)
    sign_in(page, live, "it.admin@example.com")

    # Manual comparison on, through the dialog.
    page.goto(f"{live.url}/user-sync")
    page.get_by_role("button", name="Sync Settings").click()
    page.get_by_role("dialog", name="Sync Settings").get_by_label("Manual comparison").check()
    page.get_by_role("dialog", name="Sync Settings").get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_contain_text("Sync settings saved.")

    # Entra changes: a joiner, a leaver (disabled), a mover and a job-title update.
    pool = leaves(admin)
    leaver, mover, updated = pool[0], pool[1], pool[2]
    ceo = next(u for u in admin.list_users() if not u.get("managerId"))
    joiner = admin.create_user(displayName="Zoë <b>Nouvelle</b>", userPrincipalName="zoe.nouvelle@contoso.com",
                               mail="zoe.nouvelle@contoso.com", department="Sales", managerId=ceo["id"])  # fmt: skip
    admin.disable_user(leaver["id"])
    admin.set_manager(mover["id"], ceo["id"])
    admin.update_user(updated["id"], jobTitle="Chief Rejection Officer")

    press_refresh(page, live)
    expect(page.locator(".run-summary")).to_contain_text("waits for your review", timeout=60_000)
    expect(page.get_by_role("tab", name="Microsoft Entra ID only (1)")).to_be_visible()
    # The leaver; the local IT admin whom the sync keeps is listed in the tab (with why) but not counted.
    expect(page.get_by_role("tab", name="entrasync only (1)")).to_be_visible()
    expect(page.get_by_role("tab", name="Differences (2)")).to_be_visible()
    # The joiner's name is shown as text, never as markup.
    expect(page.get_by_text("Zoë <b>Nouvelle</b>")).to_be_visible()
    shot(page, "user-sync-review")

    # Reject the job-title update; accept everything else.
    page.get_by_role("tab", name="Differences (2)").click()
    row = page.locator("tr", has_text=updated["displayName"])
    expect(row).to_contain_text("Chief Rejection Officer")
    row.get_by_role("button", name="Reject").click()
    expect(page.locator("tr", has_text=updated["displayName"]).locator(".decision")).to_have_text("Rejected")
    move_row = page.locator("tr", has_text=mover["displayName"])
    move_row.get_by_role("button", name="Accept").click()
    expect(page.locator("tr", has_text=mover["displayName"]).locator(".decision")).to_have_text("Accepted")
    page.get_by_role("tab", name="Microsoft Entra ID only (1)").click()
    page.get_by_role("button", name="Accept all").click()
    page.get_by_role("tab", name="entrasync only (1)").click()
    expect(page.locator("tr", has_text="Kept")).to_have_count(1)
    page.get_by_role("button", name="Accept all").click()
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".flash")).to_contain_text("applied")
    page.get_by_role("tab", name="History").click()
    expect(page.locator("table")).to_contain_text("applied")

    # The directory holds exactly that.
    assert person_by_entra(live, joiner["id"])["status"] == "active"
    assert person_by_entra(live, leaver["id"])["status"] == "archived"
    ceo_person = person_by_entra(live, ceo["id"])
    assert person_by_entra(live, mover["id"])["manager_id"] == ceo_person["id"]
    assert person_by_entra(live, updated["id"])["job_title"] != "Chief Rejection Officer"


def test_super_admin_needs_global_admin_and_employee_is_refused(page: Any, live: Live) -> None:
    ctx = live.ctx
    add_account(ctx, "megan.bowen@contoso.com", ["super_admin"], "Megan Bowen")
    add_account(ctx, "adele.vance@contoso.com", ["super_admin"], "Adele Vance")

    # Megan is a Super admin here but only a User at Microsoft: refused with a clear message.
    sign_in(page, live, "megan.bowen@contoso.com")
    connect_through_microsoft_until_signin(page, "Megan Bowen")
    expect(page.locator(".error-message")).to_contain_text("is not a Global Administrator")
    assert not connection.status(ctx, live.org_id).connected
    shot(page, "connect-refused")

    # Adele is a Super admin and a Global Administrator: cancelling consent shows Microsoft's error...
    page.goto(f"{live.url}/signin")
    page.context.clear_cookies()
    sign_in(page, live, "adele.vance@contoso.com")
    connect_through_microsoft_until_signin(page, "Adele Vance")
    page.get_by_role("button", name=re.compile("Adele Vance")).click()
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".error-message")).to_contain_text("declined")
    expect(page.locator("#entra-status")).to_have_text("Not connected")
    # ... and accepting connects.
    page.goto(f"{live.url}/people")
    connect_through_microsoft(page, "Adele Vance")
    expect(page.locator("#entra-status")).to_have_text("Microsoft Entra ID is connected to entrasync.")
    page.get_by_role("button", name="View details").click()
    expect(page.get_by_role("heading", name="User Sync - Microsoft Entra ID")).to_be_visible()

    # An employee: no cog, 403 on the pages and the API.
    pid = people.add_person(ctx, live.org_id, Actor.cli(), {"email": "emp@example.com", "display_name": "Em Ployee"})
    with ctx.db.engine.begin() as conn:
        conn.execute(
            sa.update(t.people).where(t.people.c.id == pid).values(password_hash=accounts.hash_password(PASSWORD))
        )
    page.context.clear_cookies()
    sign_in(page, live, "emp@example.com")
    expect(page.get_by_role("button", name="Settings", exact=True)).to_have_count(0)
    assert page.goto(f"{live.url}/integrations").status == 403
    assert page.goto(f"{live.url}/user-sync").status == 403
    _rec, token = api_tokens.create(ctx, live.org_id, pid, "employee", scopes=["admin"])
    for method, path in (("GET", "/api/v1/settings"), ("POST", "/api/v1/refresh"), ("DELETE", "/api/v1/connection"),
                         ("POST", "/api/v1/people")):  # fmt: skip
        r = page.request.fetch(f"{live.url}{path}", method=method, headers={"Authorization": f"Bearer {token}"},
                               data={"email": "x@example.com"} if path == "/api/v1/people" else None)  # fmt: skip
        assert r.status == 403, (path, r.status, r.text())
        assert "detail" in r.json()


def connect_through_microsoft_until_signin(page: Any, account: str) -> None:
    page.get_by_role("button", name="Settings", exact=True).click()
    page.get_by_role("menuitem", name="Integrations").click()
    page.get_by_role("button", name="Connect").click()
    page.get_by_role("button", name="Continue to Microsoft").click()
    page.get_by_role("button", name=re.compile(account)).click()


def test_recipient_sees_bell_and_summary_and_held_reason(page: Any, live: Live, admin: Any) -> None:
    ctx = live.ctx
    add_account(ctx, "it.admin@example.com", ["it_admin"])
    hr = add_account(ctx, "hr.lead@example.com", ["super_admin"], "Hana Recipient")
    connect_and_sync(live)
    sync_settings.save(ctx, live.org_id, Actor.cli(), {"notify": True, "recipient_id": hr}, None)

    # A refresh with one joiner, pressed by the IT admin.
    admin.create_user(
        displayName="New Joiner", userPrincipalName="new.joiner@contoso.com", mail="new.joiner@contoso.com"
    )
    sign_in(page, live, "it.admin@example.com")
    expect(page.get_by_role("button", name=re.compile(r"Notifications, 0 unread"))).to_be_visible()
    page.goto(f"{live.url}/user-sync")
    press_refresh(page, live)
    expect(page.locator(".run-summary")).to_contain_text("applied", timeout=60_000)

    # Six leavers (more than 10% of 60): held even in Auto-sync, and the notification says why.
    for u in leaves(admin)[:6]:
        admin.disable_user(u["id"])
    press_refresh(page, live)
    expect(page.locator(".run-summary")).to_contain_text("waits for your review", timeout=60_000)
    expect(page.locator(".warning", has_text="Held for review")).to_be_visible()

    page.context.clear_cookies()
    sign_in(page, live, "hr.lead@example.com")
    bell = page.get_by_role("button", name=re.compile(r"Notifications, 2 unread"))
    expect(bell).to_be_visible()
    shot(page, "bell", full_page=False)
    bell.click()
    expect(page.get_by_role("heading", name="Notifications")).to_be_visible()
    expect(page.locator(".notifications")).to_contain_text("Refresh applied")
    expect(page.locator(".notifications")).to_contain_text("1 joiner")
    expect(page.locator(".notifications")).to_contain_text("Refresh held for review")
    expect(page.locator(".notifications")).to_contain_text("6 archived")
    shot(page, "notifications")
    page.get_by_role("button", name="Mark all as read").click()
    expect(page.get_by_role("button", name=re.compile(r"Notifications, 0 unread"))).to_be_visible()
    with ctx.db.engine.connect() as conn:
        archived = conn.execute(
            sa.select(sa.func.count()).select_from(t.people).where(t.people.c.status == "archived")
        ).scalar_one()
    assert archived == 0  # held: nobody archived until an admin applies


def test_sign_in_with_microsoft_maps_to_the_synced_person(page: Any, live: Live) -> None:
    connect_and_sync(live)
    page.goto(f"{live.url}/signin")
    page.get_by_role("button", name="Sign in with Microsoft").click()
    page.get_by_role("button", name=re.compile("Megan Bowen")).click()
    expect(page.get_by_role("heading", name="People")).to_be_visible()
    # Megan is a synced person without entrasync roles: an employee.
    expect(page.get_by_role("button", name="Settings", exact=True)).to_have_count(0)
    me = page.request.get(f"{live.url}/api/v1/me").json()
    assert me["email"] == "megan.bowen@contoso.com" and me["roles"] == []
