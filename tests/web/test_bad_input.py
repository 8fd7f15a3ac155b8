"""Bad input: every form answers with an inline message next to its field (never a 500), and a bounded
schemathesis run over the OpenAPI document finds no server error."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from playwright.sync_api import expect
from tests.web.conftest import Live, add_account, shot, sign_in

from entrasync.services import api_tokens, connection
from entrasync.services.context import Actor, AppContext
from entrasync.web.app import create_app


def assert_inline(page: Any, field_label: str, message: str, scope: Any = None) -> None:
    """The field is marked invalid and its described-by element holds the message."""
    field = (scope or page).get_by_label(field_label, exact=True)
    expect(field).to_have_attribute("aria-invalid", "true")
    described = (field.get_attribute("aria-describedby") or "").split()
    assert described, field_label
    texts = " ".join(page.locator(f"#{i}").inner_text() for i in described)
    assert message in texts, (field_label, texts)


@pytest.mark.browser
def test_every_form_shows_inline_errors(page: Any, live: Live) -> None:
    info = live.emulator.info
    add_account(live.ctx, "boss@example.com", ["super_admin", "it_admin"], "Bo Boss")
    connection.connect(live.ctx, live.org_id, Actor.cli(),
                       connection.Credentials(info.tenant_id, info.client_id, info.client_secret))  # fmt: skip
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status))

    # Sign-in.
    page.goto(f"{live.url}/signin")
    page.get_by_role("button", name="Sign in", exact=True).click()
    assert_inline(page, "E-mail", "Enter your e-mail address.")
    assert_inline(page, "Password", "Enter your password.")
    page.get_by_label("E-mail").fill("boss@example.com")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    assert_inline(page, "Password", "not right")
    shot(page, "signin-error")
    sign_in(page, live, "boss@example.com")

    # Sync Settings: one message per field, the dialog open again with what was typed.
    page.goto(f"{live.url}/user-sync")
    page.get_by_role("button", name="Sync Settings").click()
    dialog = page.get_by_role("dialog", name="Sync Settings")
    dialog.get_by_label("Send notification on refresh").check()
    dialog.get_by_label("Graph API filter").check()
    dialog.get_by_label("Definition").fill("department eq")
    dialog.get_by_label("E-mail filter").check()
    dialog.get_by_label("Group filter").check()
    dialog.get_by_label("Group IDs").fill("not-a-guid")
    dialog.get_by_label("Safety guard (%)").fill("250")
    dialog.get_by_role("button", name="Save").click()
    dialog = page.get_by_role("dialog", name="Sync Settings")
    expect(dialog).to_be_visible()
    assert_inline(page, "Recipient", "Super admin", dialog)
    assert_inline(page, "Definition", "Microsoft Graph rejected the Definition", dialog)
    assert_inline(page, "Include if e-mail contains", "turn the E-mail filter off", dialog)
    assert_inline(page, "Group IDs", "not-a-guid", dialog)
    assert_inline(page, "Safety guard (%)", "percentage", dialog)
    expect(dialog.get_by_label("Definition")).to_have_value("department eq")
    shot(page, "sync-settings-errors", full_page=False)
    dialog.get_by_label("Safety guard (%)").fill("0")
    dialog.get_by_role("button", name="Save").click()
    assert_inline(page, "Safety guard (%)", "percentage", page.get_by_role("dialog", name="Sync Settings"))

    # Add a person, edit, move.
    page.goto(f"{live.url}/people/new")
    page.get_by_label("E-mail").fill("not an e-mail")
    page.get_by_label("Departments").fill("a, b, c, d, e")
    page.get_by_role("button", name="Add person").click()
    assert_inline(page, "E-mail", "valid e-mail")
    assert_inline(page, "Departments", "at most 4")
    page.get_by_label("E-mail").fill("new.hire@example.com")
    page.get_by_label("Departments").fill("Sales")
    page.get_by_label("Display name").fill("New <script>alert(1)</script> Hire")
    page.get_by_role("button", name="Add person").click()
    expect(page.get_by_role("heading", name="New <script>alert(1)</script> Hire")).to_be_visible()
    expect(page.get_by_role("note")).to_contain_text("overwrites")
    page.get_by_label("E-mail", exact=True).fill("boss@example.com")
    page.get_by_role("button", name="Save").click()
    assert_inline(page, "E-mail", "already has this e-mail")
    page.get_by_label("Move to the team of", exact=False).fill("nobody@example.com")
    page.get_by_role("button", name="Move").click()
    field = page.get_by_label("Move to the team of", exact=False)
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#manager_id-error")).to_contain_text("Nobody in this organisation")
    shot(page, "person")

    # My settings: a token needs a name.
    page.goto(f"{live.url}/me")
    page.get_by_role("button", name="Create token").click()
    assert_inline(page, "Token name", "name")
    page.get_by_label("Token name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#new-token")).to_contain_text(api_tokens.PREFIX)

    # Odd URLs are pages, not crashes.
    for path in ("/people/abc", "/people/99999999999999", "/people?page=-3&status=nope&team=x",
                 "/user-sync?tab=zzz&page=x", "/organisation?root=abc"):  # fmt: skip
        page.goto(f"{live.url}{path}")
    assert statuses and max(statuses) < 500, statuses


def _fuzz(operation: Any, token: str, failures: list[str]) -> Any:
    """A bounded Hypothesis run of one operation that records any 5xx answer."""
    from schemathesis.checks import not_a_server_error

    @settings(max_examples=12, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        if response.status_code >= 500:
            failures.append(f"{operation.method} {operation.path}: {response.status_code} {response.text[:300]}")
        case.validate_response(response, checks=[not_a_server_error])

    return run


def test_schemathesis_finds_no_server_error(app_ctx: AppContext) -> None:
    import schemathesis

    pid = add_account(app_ctx, "boss@example.com", ["super_admin", "it_admin"])
    _rec, token = api_tokens.create(app_ctx, app_ctx.org_id(), pid, "fuzz", scopes=["admin"])
    app = create_app(app_ctx)
    with TestClient(app) as c:  # some data to read
        h = {"Authorization": f"Bearer {token}"}
        for i in range(3):
            c.post("/api/v1/people", json={"email": f"p{i}@example.com", "display_name": f"P {i}"}, headers=h)
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    started = time.monotonic()
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() == "POST" and operation.path.endswith("/connection"):
            continue  # would call out to Graph with fuzzed tenants; covered in test_api

        run = _fuzz(operation, token, failures)
        try:
            run()
        except Exception as exc:
            failures.append(f"{operation.method} {operation.path}: {exc}")
    assert not failures, "\n".join(failures[:10])
    assert time.monotonic() - started < 60
