"""Sign-in per organisation in Chromium (spec §10): two organisations on two tenants of one emulator.

A local account whose e-mail exists in both organisations is asked which one on ``/signin``; each
organisation's own page signs in there; Sign in with Microsoft lands in the organisation connected to
the tenant the person signed in at (the emulator's organization switcher picks the second tenant).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.web.conftest import PASSWORD, Live, shot

from entrasync.emulator.admin_client import AdminClient
from entrasync.services import accounts, connection, orgs, sync
from entrasync.services.context import Actor

pytestmark = pytest.mark.browser
SHARED = "pat@shared.example"


@pytest.fixture
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from entrasync.emulator.server import start_in_thread

    emu = start_in_thread(users=60, seed=11, data_dir=tmp_path_factory.mktemp("emu"), tenants=2, min_users=40,
                          max_users=70)  # fmt: skip
    yield emu
    emu.stop()


def _people_total(page: Any) -> int:
    m = re.fullmatch(r"(\d+) (people|person)", page.locator(".total").inner_text().strip())
    assert m
    return int(m.group(1))


def _sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_each_organisation_signs_in_to_its_own_directory(page: Any, live: Live, admin: AdminClient) -> None:
    ctx, info = live.ctx, live.emulator.info
    tenants = admin.tenants()
    default, acme = ctx.org_id(), orgs.create(ctx, "acme", "Acme Ltd")
    sizes = {}
    for org, tenant in ((default, tenants[0]), (acme, tenants[1])):
        connection.connect(ctx, org, Actor.cli(), connection.Credentials(tenant["tenantId"], info.client_id,
                                                                         info.client_secret))  # fmt: skip
        assert sync.refresh(ctx, org, trigger="cli", actor=Actor.cli()).outcome == "applied"
        accounts.create_admin(ctx, org, Actor.cli(), email=SHARED, name=f"Pat of {tenant['displayName']}",
                              password=PASSWORD, roles=["super_admin", "it_admin"])  # fmt: skip
        sizes[org] = orgs.show(ctx, "default" if org == default else "acme")["people"]
    assert sizes[default] != sizes[acme], "the two directories can be told apart by their size"

    # 1. /signin: the e-mail has accounts in both organisations, so the page asks which.
    page.goto(f"{live.url}/signin")
    page.get_by_label("E-mail").fill(SHARED)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Choose your organisation")).to_be_visible()
    shot(page, "signin-choose-organisation")
    page.get_by_role("button", name="Acme Ltd").click()
    expect(page.get_by_role("heading", name="People")).to_be_visible()
    assert _people_total(page) == sizes[acme]
    _sign_out(page)

    # 2. The default organisation's own page signs in there, no question asked.
    page.goto(f"{live.url}/o/default/signin")
    page.get_by_label("E-mail").fill(SHARED)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="People")).to_be_visible()
    assert _people_total(page) == sizes[default]
    _sign_out(page)

    # 3. Sign in with Microsoft from /signin: the emulator's account picker, switched to the second
    # tenant; the ID token's tid finds Acme.
    acme_admin = next(a for a in admin.for_tenant(tenants[1]["tenantId"]).tenant_summary()["admins"]
                      if a["globalAdministrator"])  # fmt: skip
    page.goto(f"{live.url}/signin")
    page.get_by_role("button", name="Sign in with Microsoft").click()
    page.get_by_label("Organization").select_option(tenants[1]["tenantId"])
    page.get_by_role("button", name="Switch organization").click()
    page.get_by_role("button", name=re.compile(re.escape(acme_admin["displayName"]))).click()
    expect(page.get_by_role("heading", name="People")).to_be_visible()
    assert _people_total(page) == sizes[acme]
    me = page.request.get(f"{live.url}/api/v1/me").json()  # the browser's own session
    assert me["email"].lower() == acme_admin["userPrincipalName"].lower(), me
    _sign_out(page)

    # 4. From Acme's own page, Sign in with Microsoft starts at Acme's tenant and lands in Acme.
    page.goto(f"{live.url}/o/acme/signin")
    expect(page.get_by_text("Acme Ltd")).to_be_visible()
    page.get_by_role("button", name="Sign in with Microsoft").click()
    expect(page.get_by_label("Organization")).to_have_count(0)  # no tenant switcher: the tenant is Acme's
    page.get_by_role("button", name=re.compile(re.escape(acme_admin["displayName"]))).click()
    expect(page.get_by_role("heading", name="People")).to_be_visible()
    assert _people_total(page) == sizes[acme]
