"""Integrations → Webhooks (spec §11): add an endpoint (secret shown once), refuse a private target,
disable it, read its delivery log; the Integrations page links to it."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tests.web.conftest import add_account, csrf_of, sign_in_client

from entrasync.services import people, webhook_delivery
from entrasync.services.context import Actor, AppContext


def test_the_webhooks_page_adds_disables_and_shows_the_log(client: TestClient, app_ctx: AppContext) -> None:
    add_account(app_ctx, "it@example.com", ["it_admin"])
    sign_in_client(client, "it@example.com")
    assert 'href="/integrations/webhooks"' in client.get("/integrations").text
    page = client.get("/integrations/webhooks")
    assert page.status_code == 200 and "No webhook endpoints." in page.text
    csrf = csrf_of(page.text)
    refused = client.post("/integrations/webhooks", data={"csrf_token": csrf, "url": "http://127.0.0.1:9/x"})
    assert refused.status_code == 422 and "private address" in refused.text and 'aria-invalid="true"' in refused.text
    app_ctx.config.webhook_allow_private = True
    made = client.post("/integrations/webhooks", data={"csrf_token": csrf, "url": "http://127.0.0.1:9/x",
                                                       "event_types": "person.created"})  # fmt: skip
    assert made.status_code == 200 and 'id="new-secret">whsec_' in made.text
    people.add_person(app_ctx, app_ctx.org_id(), Actor.cli(), {"email": "new@example.com"})
    counts = webhook_delivery.deliver_due(app_ctx)  # nobody listens on port 9: a failed attempt
    assert counts.attempted == 1 and counts.failed == 1
    log = client.get("/integrations/webhooks/1")
    assert "Delivery log: http://127.0.0.1:9/x" in log.text and "person.created" in log.text
    assert "0 delivered, 1 pending" in log.text
    off = client.post("/integrations/webhooks/1/status", data={"csrf_token": csrf, "action": "disable"})
    assert off.status_code == 200 and "is disabled" in off.text and "Enable" in off.text
    assert client.get("/integrations/webhooks/999").status_code == 404
