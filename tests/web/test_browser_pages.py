"""Every page at 1280 and 390 px (issue 17): it fits the viewport (no sideways scrolling), axe-core finds
no serious or critical violation, User Sync breaks no word inside a cell, and a screenshot of each is
saved as a test artifact. One seeded app for the module: an applied first sync, a failed refresh, a plan
a newer refresh superseded, and the newest plan waiting for review with every kind of change in it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from tests.web.conftest import Live, add_account, sign_in
from tests.web.test_browser_review import leaves
from tests.web.ui_checks import HEIGHTS, WIDTHS, axe_violations, broken_words, focus_ring, overflow, shoot

from entrasync.adapters.db import tables as t
from entrasync.emulator.admin_client import AdminClient
from entrasync.services import connection, people, sync, sync_settings
from entrasync.services.context import Actor

# The same pages whatever the database: their layout and accessibility are checked in the SQLite pass.
pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]
ADMIN = "ian.admin@example.com"


def person_id(live: Live, entra_id: str) -> int:
    with live.ctx.db.engine.connect() as conn:
        return int(conn.execute(sa.select(t.people.c.id).where(t.people.c.entra_id == entra_id)).scalar_one())


@pytest.fixture(scope="module")
def seeded(module_live: Live) -> dict[str, Any]:
    """The story the pages tell: run 1 applied (the first sync), run 2 failed, run 3's plan superseded by
    run 4, which waits for review: two joiners (one the other's manager), a leaver, a mover, an update of
    a job title edited by hand and of a department, and the local admin the sync keeps."""
    live = module_live
    ctx, org = live.ctx, live.org_id
    info = live.emulator.info
    ian = add_account(ctx, ADMIN, ["super_admin", "it_admin"], "Ian Admin")
    connection.connect(ctx, org, Actor.cli(), connection.Credentials(info.tenant_id, info.client_id,
                       info.client_secret), connected_by="Adele Vance (adele.vance@contoso.com)")  # fmt: skip
    daily = {"strategy": "daily", "refresh_time": "07:30", "time_zone": "Europe/London"}
    sync_settings.save(ctx, org, Actor.cli(), {"notify": True, "recipient_id": ian, **daily}, None)
    me = Actor(label=ADMIN, person_id=ian, super_admin=True, integrator=True)
    assert sync.refresh(ctx, org, trigger="button", actor=me).outcome == "applied"
    with AdminClient(info.admin_url, info.ca_bundle) as admin:
        admin.inject_fault("/v1.0/users/delta", "no_value", count=5)
        impatient = dataclasses.replace(ctx, config=ctx.config.model_copy(update={"graph_max_retry_seconds": 0}))
        assert sync.refresh(impatient, org, trigger="schedule", actor=Actor.cli()).outcome == "failed"
        admin.clear_faults()
        sync_settings.save(ctx, org, Actor.cli(), {"mode": "manual"}, None)
        users = admin.list_users()
        ceo = next(u for u in users if not u.get("managerId") and u.get("accountEnabled", True))
        pool = leaves(admin)
        lead = admin.create_user(displayName="Zoë Brown", userPrincipalName="zoe.brown@contoso.com",
                                 mail="zoe.brown@contoso.com", department="Marketing", jobTitle="Brand Director",
                                 managerId=ceo["id"])  # fmt: skip
        admin.create_user(displayName="Yusuf Demir", userPrincipalName="yusuf.demir@contoso.com",
                          mail="yusuf.demir@contoso.com", department="Marketing", jobTitle="Designer",
                          managerId=lead["id"])  # fmt: skip
        admin.update_user(pool[3]["id"], jobTitle="Account Executive")
        assert sync.refresh(ctx, org, trigger="button", actor=me).outcome == "awaiting_review"
        admin.disable_user(pool[0]["id"])
        admin.set_manager(pool[1]["id"], ceo["id"])
        admin.update_user(pool[2]["id"], jobTitle="Head of Partnerships", department="Legal")
        people.edit_person(ctx, org, Actor.cli(), person_id(live, pool[2]["id"]), {"job_title": "Partnerships lead"})
        assert sync.refresh(ctx, org, trigger="button", actor=me).outcome == "awaiting_review"
    with ctx.db.engine.connect() as conn:
        runs = conn.execute(sa.select(t.runs.c.id, t.runs.c.plan_state).order_by(t.runs.c.id)).all()
    assert [r.plan_state for r in runs] == ["applied", "none", "superseded", "pending"], runs
    return {"ceo": person_id(live, ceo["id"]), "mover": person_id(live, pool[1]["id"]), "runs": [r.id for r in runs]}


@pytest.fixture(scope="module")
def pages_at(browser: Any, module_live: Live, seeded: dict[str, Any]) -> Iterator[dict[int, Any]]:
    """A signed-in page per width (one browser for the module)."""
    opened = {}
    for width in WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": HEIGHTS[width]}, ignore_https_errors=True)
        context.set_default_timeout(15_000)
        pg = context.new_page()
        sign_in(pg, module_live, ADMIN)
        opened[width] = pg
    yield opened
    for pg in opened.values():
        pg.context.close()


def _pages(seeded: dict[str, Any]) -> dict[str, str]:
    runs = seeded["runs"]
    return {
        "people": "/people",
        "people-search-none": "/people?q=nobody-at-all&status=archived",
        "person": f"/people/{seeded['mover']}",
        "person-new": "/people/new",
        "organisation": "/organisation",
        "organisation-open": f"/organisation?open={seeded['mover']}",
        "organisation-team": f"/organisation?root={seeded['ceo']}",
        "integrations": "/integrations",
        "connect": "/integrations/entra/connect",
        "user-sync-entra-only": "/user-sync?tab=entra_only",
        "user-sync-entrasync-only": "/user-sync?tab=directory_only",
        "user-sync-differences": "/user-sync?tab=differences",
        "user-sync-matched": "/user-sync?tab=matched",
        "user-sync-history": "/user-sync?tab=history",
        "user-sync-mapping": "/user-sync/mapping",
        "run-first-sync": f"/user-sync/runs/{runs[0]}",
        "run-failed": f"/user-sync/runs/{runs[1]}",
        "run-waiting": f"/user-sync/runs/{runs[3]}",
        "notifications": "/notifications",
        "me": "/me",
        "error": "/people/999999999",
    }


PAGE_NAMES = list(_pages({"mover": 0, "ceo": 0, "runs": [0, 0, 0, 0]}))


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", PAGE_NAMES)
def test_page_fits_passes_axe_and_is_photographed(
    name: str, width: int, pages_at: dict[int, Any], module_live: Live, seeded: dict[str, Any]
) -> None:
    page = pages_at[width]
    response = page.goto(module_live.url + _pages(seeded)[name])
    assert response is not None and response.status == (404 if name == "error" else 200), name
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    shoot(page, name, width)
    assert overflow(page) <= 0, f"{name} scrolls sideways by {overflow(page)}px at {width}px"
    inner = page.evaluate("() => [...document.querySelectorAll('.table-wrap')].map(w => w.scrollWidth - w.clientWidth)")
    assert max(inner, default=0) <= 0, f"{name}: a table scrolls sideways inside its box at {width}px: {inner}"
    problems = axe_violations(page)
    assert not problems, "\n".join(problems)
    if name.startswith(("user-sync", "run-")) and width == 390:
        broken = broken_words(page)
        assert not broken, f"{name}: words broken inside cells at 390px: {broken[:8]}"


@pytest.mark.parametrize("width", WIDTHS)
def test_sign_in_page(browser: Any, module_live: Live, seeded: dict[str, Any], width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": HEIGHTS[width]})
    page = context.new_page()
    try:
        page.goto(f"{module_live.url}/signin")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        shoot(page, "signin", width)
        assert overflow(page) <= 0
        assert not axe_violations(page)
    finally:
        context.close()


def test_focus_ring_is_at_least_3_to_1(pages_at: dict[int, Any], module_live: Live) -> None:
    page = pages_at[1280]
    page.goto(f"{module_live.url}/people")
    for selector in ("main table a", "main button[type=submit]", "header .main-nav a", "header .bell"):
        ratio, width = focus_ring(page, selector)
        assert width >= 2 and ratio >= 3.0, f"{selector}: focus ring {width}px at {ratio:.2f}:1"


def test_review_shows_what_matters(pages_at: dict[int, Any], module_live: Live) -> None:
    """Departments as text, managers by name, joiners with their details, archives in red, the kept
    admin named, tab counts equal to the rows they count, a superseded plan and a failed run in words."""
    page = pages_at[1280]
    page.goto(f"{module_live.url}/user-sync?tab=entra_only")
    expect(page.get_by_role("tab", name="Microsoft Entra ID only (2)")).to_be_visible()
    main = page.locator("table.changes").first
    expect(main.locator("tbody tr")).to_have_count(2)
    lead = main.locator("tr", has=page.locator("td.who", has_text="Zoë Brown"))
    expect(lead).to_contain_text("Brand Director")
    expect(lead).to_contain_text("Marketing")
    expect(lead).to_contain_text("Manager")
    yusuf = main.locator("tr", has=page.locator("td.who", has_text="Yusuf Demir"))
    expect(yusuf).to_contain_text("Zoë Brown (joins in this plan too)")

    page.goto(f"{module_live.url}/user-sync?tab=differences")
    rows = page.locator("table.changes").first.locator("tbody tr")
    expect(page.get_by_role("tab", name="Differences (3)")).to_be_visible()  # run 3's update is proposed again
    expect(rows).to_have_count(3)
    text = rows.all_inner_texts()
    assert not any("['" in r or "[]" in r for r in text), text
    changed = page.locator("tr", has_text="Head of Partnerships")
    expect(changed).to_contain_text("Legal")
    expect(changed.locator(".tag.warn")).to_contain_text("edited by hand")
    moved = page.locator("tr", has_text="Manager").filter(has_not_text="Head of Partnerships")
    assert "@" not in moved.locator("li", has_text="Manager").inner_text()  # a name, not an e-mail

    page.goto(f"{module_live.url}/user-sync?tab=directory_only")
    expect(page.get_by_role("tab", name="entrasync only (1)")).to_be_visible()
    expect(page.locator("table.changes").first.locator("tbody tr")).to_have_count(1)
    archived = page.locator("table.changes").first.locator("ins.archive")
    expect(archived).to_have_text("Archived")
    assert archived.evaluate("e => getComputedStyle(e).color") == "rgb(164, 14, 38)"  # red, never green
    kept = page.locator("table.changes").nth(1).locator("tbody tr")
    expect(kept).to_have_count(1)
    expect(kept.locator("td.who")).to_contain_text("Ian Admin")

    page.goto(f"{module_live.url}/user-sync?tab=history")
    history = page.locator("table.history tbody tr")
    expect(history).to_have_count(4)
    expect(history.nth(1)).to_contain_text("superseded")
    expect(history.nth(1)).not_to_contain_text("held")
    expect(history.nth(2)).to_contain_text("failed")
    expect(history.nth(3)).to_contain_text("Refresh button, by Ian Admin")
    expect(history.nth(3)).not_to_contain_text("0 restored")


def test_status_panel_on_integrations_and_user_sync(pages_at: dict[int, Any], module_live: Live) -> None:
    page = pages_at[1280]
    for path in ("/integrations", "/user-sync"):
        page.goto(module_live.url + path)
        panel = page.locator(".status-panel")
        expect(panel.locator(".stat", has_text="Last refresh")).to_contain_text("waiting for review")
        expect(panel.locator(".stat", has_text="Next refresh")).to_contain_text("Daily at 07:30 (Europe/London)")
        synced = int(panel.locator(".stat", has_text="People synced").locator(".big").inner_text())
        assert synced > 50
        bars = panel.locator("svg[role=img] g.bar")
        expect(bars).to_have_count(4)
        expect(panel.locator("svg[role=img] title").first).to_contain_text("Changes made by the last 4 refreshes")
    expect(page.locator(".run-summary")).to_contain_text("waits for your review")
    page.goto(f"{module_live.url}/integrations")
    expect(page.locator(".integration-main")).to_contain_text("connected by Adele Vance")


def test_run_page_pages_its_changes_by_kind(
    pages_at: dict[int, Any], module_live: Live, seeded: dict[str, Any]
) -> None:
    page = pages_at[1280]
    first = seeded["runs"][0]
    page.goto(f"{module_live.url}/user-sync?tab=history")
    page.get_by_role("link", name=f"Run {first}", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Run {first}")
    expect(page.locator(".facts")).to_contain_text("Refresh button, by Ian Admin")
    new = page.get_by_role("link", name="New (")
    total = int(new.inner_text().split("(")[1].rstrip(")"))
    assert total > 50
    new.click()
    expect(page.locator("table.changes tbody tr")).to_have_count(50)
    expect(page.locator(".pager")).to_contain_text("Page 1 of 2")
    page.get_by_role("link", name="Next").click()
    expect(page.locator("table.changes tbody tr")).to_have_count(total - 50)
    expect(page.locator("table.changes .decision").first).to_have_text("Accepted, applied")


def test_notifications_say_what_became_of_each_plan(pages_at: dict[int, Any], module_live: Live) -> None:
    page = pages_at[1280]
    page.goto(f"{module_live.url}/notifications")
    items = page.locator(".notifications > li")
    expect(items).to_have_count(4)
    replaced = items.filter(has_text="replaced by a newer refresh")
    expect(replaced).to_have_count(1)
    expect(replaced).not_to_contain_text("await your review")
    expect(items.first).to_contain_text("await your review")
    expect(items.first.get_by_role("link", name="Review the plan")).to_have_attribute("href", "/user-sync")
    replaced.get_by_role("link", name="Open run").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Run")
    expect(page.locator(".facts")).to_contain_text("a newer refresh")


def test_organisation_chart_opens_teams_in_place(
    pages_at: dict[int, Any], module_live: Live, seeded: dict[str, Any]
) -> None:
    page = pages_at[1280]
    page.goto(f"{module_live.url}/organisation")
    expect(page.get_by_role("heading", name="Top of the organisation")).to_have_count(1)
    heads = page.locator("ul.tree > li")
    expect(heads).to_have_count(1)  # the CEO; people without a manager and local admins are listed apart
    expect(page.locator("#hand-title")).to_contain_text("Added by hand (1)")
    toggle = heads.first.locator(":scope > .node-row a.toggle")
    expect(toggle).to_have_attribute("role", "button")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    with page.expect_response(lambda r: "/organisation/team/" in r.url):
        toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    team = heads.first.locator(":scope > ul.tree-children > li.node")
    assert team.count() >= 2
    assert page.url.endswith("/organisation")  # opened in place, no reload
    toggle.press("Space")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(heads.first.locator(":scope > ul.tree-children")).to_be_hidden()


def test_organisation_chart_works_without_javascript(browser: Any, module_live: Live, seeded: dict[str, Any]) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, module_live, ADMIN)
        page.goto(f"{module_live.url}/organisation")
        page.locator("ul.tree > li a.toggle").first.click()
        assert "open=" in page.url
        expect(page.locator("ul.tree > li > ul.tree-children > li.node").first).to_be_visible()
    finally:
        context.close()


def test_people_and_person_pages_say_what_they_show(
    pages_at: dict[int, Any], module_live: Live, seeded: dict[str, Any]
) -> None:
    page = pages_at[1280]
    page.goto(f"{module_live.url}/people?q=nobody-at-all&status=archived")
    empty = page.locator("table.people tr.empty")
    expect(empty).to_contain_text("Nobody matches “nobody-at-all” among archived people.")
    empty.get_by_role("link", name="Search every status").click()
    expect(page.get_by_label("Status")).to_have_value("all")
    expect(page.get_by_label("Search people")).to_have_value("nobody-at-all")
    page.get_by_role("link", name="Clear", exact=True).click()
    expect(page.get_by_label("Search people")).to_have_value("")

    page.goto(f"{module_live.url}/people/{seeded['mover']}")
    editor = page.locator("details.editor")
    expect(editor).not_to_have_attribute("open", "")  # closed until asked for
    editor.locator("summary").click()
    move = page.get_by_label("Move to the team of", exact=False)
    assert "@" in (move.input_value() or "")  # the current manager's e-mail, ready to change
    assert page.locator("#manager-options option").count() >= 3  # managers to pick from
    created = page.locator("table.audit tr", has_text="Created")
    expect(created).to_contain_text("E-mail")
    assert "{" not in created.inner_text()
