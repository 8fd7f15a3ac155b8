"""``entrasync tokens`` and ``entrasync webhooks``: the headless paths (spec §7, §11)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from tests.e2e.e2e_helpers import cli

from entrasync.config import Config
from entrasync.services.context import AppContext
from entrasync.web.app import create_app


def _env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {"ENTRASYNC_DATABASE_URL": db_url, "ENTRASYNC_DATA_DIR": str(tmp_path / "data"),
            "ENTRASYNC_SECRET_KEY": "cli-feed-test-key", "ENTRASYNC_WEBHOOK_ALLOW_PRIVATE": "1",
            "ENTRASYNC_ADMIN_PASSWORD": "a-long-enough-password"}  # fmt: skip


def test_a_token_made_on_the_command_line_works_on_the_api_within_its_scope_until_revoked(
    db_url: str, tmp_path: Path
) -> None:
    env = _env(db_url, tmp_path)
    cli(env, "admin", "create", "--email", "ops@x.test", "--role", "super_admin")
    made = cli(env, "tokens", "create", "--email", "ops@x.test", "--name", "host app", "--scope", "read")
    assert made["scopes"] == ["read"] and made["token"].startswith("es_")
    assert cli(env, "tokens", "create", "--email", "nobody@x.test", "--name", "x", ok=False).exit_code != 0
    ctx = AppContext.create(Config(database_url=db_url, data_dir=tmp_path / "data", secret_key="cli-feed-test-key"))
    h = {"Authorization": f"Bearer {made['token']}"}
    with TestClient(create_app(ctx)) as client:
        assert client.get("/api/v1/people", headers=h).status_code == 200
        r = client.post("/api/v1/people", json={"email": "new@x.test"}, headers=h)
        assert r.status_code == 403 and "write scope" in r.json()["detail"]
        assert r.headers["content-type"] == "application/problem+json"
        cli(env, "tokens", "revoke", str(made["id"]), "--email", "ops@x.test")
        r = client.get("/api/v1/people", headers=h)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    listed = cli(env, "tokens", "list", "--email", "ops@x.test")
    assert [(t["name"], t["status"]) for t in listed] == [("host app", "revoked")]
    ctx.db.dispose()


def test_webhooks_from_the_command_line(db_url: str, tmp_path: Path) -> None:
    env = _env(db_url, tmp_path)
    made = cli(env, "webhooks", "create", "--url", "http://127.0.0.1:9/hook", "--event-type", "person.created")
    assert made["secret"].startswith("whsec_") and made["event_types"] == ["person.created"]
    assert [w["id"] for w in cli(env, "webhooks", "list")] == [made["id"]]
    assert "secret" not in cli(env, "webhooks", "show", str(made["id"]))
    assert cli(env, "webhooks", "disable", str(made["id"]))["status"] == "disabled"
    assert cli(env, "webhooks", "enable", str(made["id"]))["status"] == "active"
    assert cli(env, "webhooks", "deliveries", str(made["id"])) == []
    refused = cli({**env, "ENTRASYNC_WEBHOOK_ALLOW_PRIVATE": "0"}, "webhooks", "create", "--url",
                  "http://127.0.0.1/x", ok=False)  # fmt: skip
    assert refused.exit_code == 1 and "private" in refused.stderr
