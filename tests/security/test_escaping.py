"""Names and job titles with HTML or script from Entra (or typed by hand) are shown escaped on People,
the person page, the Organisation tree, every User Sync tab and the notification list."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from markupsafe import escape
from tests.security.conftest import World

from entrasync.adapters.db import tables as t
from entrasync.services import people, review, sync
from entrasync.services.context import Actor

NAME = "Zed <script>alert('name')</script> Hacker"
TITLE = '<img src=x onerror="alert(1)">Boss'
TITLE2 = "</td><svg onload=alert(2)>"
MATCHED = "Mia <b onmouseover=alert(3)>Matched</b>"
MANUAL = "Hand <iframe src=javascript:alert(4)></iframe>"
NOTE = "<script>alert('note')</script>"


def assert_escaped(html: str, payload: str, where: str) -> None:
    assert payload not in html, f"{where}: {payload!r} is in the page unescaped"
    assert str(escape(payload)) in html, f"{where}: {payload!r} is not on the page (escaped) at all"


def test_html_from_entra_and_by_hand_is_escaped(world: World, admin: Any) -> None:
    ctx, org = world.ctx, world.org1
    evil = admin.create_user(displayName=NAME, jobTitle=TITLE, userPrincipalName="zed.hacker@contoso.com",
                             mail="zed.hacker@contoso.com", department="Sales")  # fmt: skip
    admin.create_user(displayName=MATCHED, userPrincipalName="mia.matched@contoso.com", mail="mia.matched@contoso.com")
    manual = people.add_person(ctx, org, Actor.cli(), {"email": "hand@example.com", "display_name": MANUAL,
                                                       "job_title": TITLE})  # fmt: skip
    it = world.clients["it_admin"].client
    emp = world.clients["employee"].client
    hr = world.clients["super_admin"].client

    first = sync.refresh(ctx, org, trigger="cli", actor=Actor.cli())
    assert first.outcome == "awaiting_review"
    page = it.get("/user-sync", params={"tab": "entra_only", "q": "Zed"}).text
    assert_escaped(page, NAME, "User Sync, Microsoft Entra ID only")
    assert_escaped(it.get("/user-sync", params={"tab": "entra_only", "q": "Mia"}).text, MATCHED, "Entra only (Mia)")
    assert_escaped(it.get("/user-sync", params={"tab": "directory_only", "q": "Hand"}).text, MANUAL, "entrasync only")

    # Keep the signed-in employee and manager (added by hand, so the plan would archive them).
    pc = t.plan_changes
    with ctx.db.reader.connect() as conn:
        keep = list(conn.execute(sa.select(pc.c.id).where(
            pc.c.run_id == first.run_id, pc.c.kind == "archive",
            pc.c.person_id.in_([world.ids["employee"], world.ids["manager"]]))).scalars())  # fmt: skip
    assert len(keep) == 2
    review.apply_plan(ctx, org, Actor.cli(), run_id=first.run_id, reject=keep)
    admin.update_user(evil["id"], jobTitle=TITLE2)
    second = sync.refresh(ctx, org, trigger="cli", actor=Actor.cli())
    assert second.outcome == "awaiting_review"
    page = it.get("/user-sync", params={"tab": "differences", "q": "Zed"}).text
    assert_escaped(page, NAME, "User Sync, Differences")
    assert_escaped(page, TITLE2, "User Sync, Differences (new job title)")
    assert_escaped(it.get("/user-sync", params={"tab": "matched", "q": "Mia"}).text, MATCHED, "User Sync, Matched")
    assert "<script>" not in it.get("/user-sync", params={"tab": "history"}).text

    zed = people.find_by_email(ctx, org, "zed.hacker@contoso.com")
    assert zed is not None
    for who, client in (("employee", emp), ("super admin", hr)):
        listing = client.get("/people", params={"q": "Zed"}).text
        assert_escaped(listing, NAME, f"People ({who})")
        person = client.get(f"/people/{zed['id']}").text
        assert_escaped(person, NAME, f"person page ({who})")
        assert_escaped(person, TITLE, f"person page job title ({who})")
        assert_escaped(client.get(f"/people/{manual}").text, MANUAL, f"hand-made person ({who})")
        assert_escaped(client.get("/people", params={"q": "Hand", "status": "all"}).text, MANUAL, f"People ({who})")
    assert zed.get("manager_id") is None  # no manager in Entra: the top of the organisation
    assert_escaped(emp.get("/organisation").text, NAME, "Organisation tree")

    # The notification list (titles and bodies can carry Graph's own error text).
    with ctx.db.engine.begin() as conn:
        conn.execute(sa.insert(t.notifications).values(org_id=org, recipient_id=world.ids["super_admin"],
                                                       created_at=ctx.now(), title=NOTE, body=TITLE))  # fmt: skip
    page = hr.get("/notifications").text
    assert_escaped(page, NOTE, "notifications title")
    assert_escaped(page, TITLE, "notifications body")
    # JSON is JSON: the API returns the text as it is (escaping is the page's job).
    assert hr.get(f"/api/v1/people/{zed['id']}").json()["display_name"] == NAME
