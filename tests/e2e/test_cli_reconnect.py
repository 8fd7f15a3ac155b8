"""Issue 12.2 through the CLI (SQLite and PostgreSQL): reconnecting the same tenant keeps everything
but the credential; another tenant needs --new-tenant; a test stores nothing; disconnect twice is fine.

Before: rotating the secret by running `connect` again (as docs/PRODUCTION.md recommends) reset every
sync setting to the defaults, unaudited: a daily schedule became Manual, review mode became Auto-sync,
filters went, and the next refresh auto-restored people an exclude filter had archived.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import audit_rows, by_entra, cli, connect, people


def test_rotating_the_secret_keeps_settings_schedule_overrides_and_delta_state(
    env: dict[str, str], emulator: Any, admin: Any
) -> None:
    connect(env, emulator)
    users = [u for u in admin.list_users() if u["accountEnabled"] and u.get("mail")]
    excluded = users[0]["mail"]
    cli(env, "settings", "set", "--strategy", "daily", "--refresh-time", "06:30", "--time-zone", "Europe/London")
    assert cli(env, "refresh")["outcome"] == "applied"
    cli(env, "settings", "set", "--email-exclude", excluded)
    assert cli(env, "refresh")["counts"]["archive"] == 1  # the exclude filter archives them
    cli(env, "settings", "set", "--mode", "manual")
    admin.update_user(users[1]["id"], jobTitle="To Be Rejected")
    cli(env, "refresh")
    reject = next(c["id"] for c in cli(env, "plan", "show")["changes"] if c["entra_id"] == users[1]["id"])
    cli(env, "plan", "apply", "--reject", str(reject))
    before = cli(env, "settings", "show")

    out = connect(env, emulator)  # the same tenant again: a new secret would go the same way
    assert out["connected"] is True
    after = cli(env, "settings", "show")
    assert {k: v for k, v in after.items() if k != "changed"} == {k: v for k, v in before.items() if k != "changed"}
    assert (after["strategy"], after["mode"], after["email_exclude"]) == ("daily", "manual", [excluded.lower()])
    assert len(cli(env, "overrides", "list")) == 1
    # The delta state stayed: the next refresh is a delta round, and the excluded person stays archived.
    nxt = cli(env, "refresh")
    assert nxt["read_mode"] == "delta", nxt
    assert by_entra(people(env))[users[0]["id"]]["status"] == "archived"
    rotated = [a for a in audit_rows(env) if a["action"] == "rotate_credential"]
    assert rotated and rotated[0]["entity"] == "connection"


@pytest.fixture
def two_tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from entrasync.emulator.server import start_in_thread

    emu = start_in_thread(users=40, seed=5, tenants=2, min_users=30, max_users=40,
                          data_dir=tmp_path_factory.mktemp("emu2"))  # fmt: skip
    yield emu
    emu.stop()


def test_another_tenant_needs_new_tenant_and_is_planned_like_any_other(env: dict[str, str], two_tenants: Any) -> None:
    info = two_tenants.info
    env = {**env, "ENTRASYNC_GRAPH_URL": info.graph_url, "ENTRASYNC_LOGIN_URL": info.login_url,
           "ENTRASYNC_CA_BUNDLE": info.ca_bundle, "ENTRASYNC_CLIENT_ID": info.client_id,
           "ENTRASYNC_CLIENT_SECRET": info.client_secret}  # fmt: skip
    tenants = json.loads(Path(info.tenants_file).read_text())["tenants"]
    first, other = tenants[0]["tenantId"], tenants[1]["tenantId"]
    cli(env, "connect", "--tenant-id", first)
    assert cli(env, "refresh")["outcome"] == "applied"
    refused = cli(env, "connect", "--tenant-id", other, ok=False)
    assert refused.exit_code != 0 and "--new-tenant" in refused.stderr and refused.stderr.count("\n") == 1
    assert cli(env, "settings", "show")["connected"] is True
    cli(env, "connect", "--tenant-id", other, "--new-tenant")
    planned = cli(env, "refresh")
    # Everyone of the first tenant would be archived: the safety guard holds it, even in Auto-sync.
    assert planned["outcome"] == "held", planned


def test_connect_check_stores_nothing_and_disconnect_twice_is_fine(env: dict[str, str], emulator: Any) -> None:
    checked = cli(env, "connect", "--tenant-id", emulator.info.tenant_id, "--check")
    assert checked["ok"] is True and checked["users"] > 0 and checked["permissions"]["User.Read.All"] is True
    assert cli(env, "settings", "show")["connected"] is False  # nothing stored
    wrong = {**env, "ENTRASYNC_CLIENT_SECRET": "not-the-secret"}
    bad = cli(wrong, "connect", "--tenant-id", emulator.info.tenant_id, "--check", ok=False)
    assert bad.exit_code != 0 and bad.stderr.count("\n") == 1 and "invalid_client" in bad.stderr, bad.stderr
    connect(env, emulator)
    assert cli(env, "disconnect")["was_connected"] is True
    again = cli(env, "disconnect")
    assert again["was_connected"] is False and again["connected"] is False
