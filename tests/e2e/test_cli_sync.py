"""Issue 3, done-means 1 and 2: the sync end to end through the CLI against the emulator.

Runs on SQLite and PostgreSQL (ENTRASYNC_TEST_DB). Every scenario checks the directory state, the run's
counts and the audit rows, not just an exit code.
"""

from __future__ import annotations

from typing import Any

from e2e_helpers import assert_directory_matches, audit_rows, by_entra, cli, connect, enabled_ids, people


def _first_sync(env: dict[str, str], emulator: Any, admin: Any) -> list[dict[str, Any]]:
    connect(env, emulator)
    result = cli(env, "refresh")
    assert result["outcome"] == "applied"
    users = admin.list_users()
    assert result["counts"]["create"] == len(enabled_ids(users))
    return users


def test_connect_shows_connected_and_never_the_secret(env: dict[str, str], emulator: Any) -> None:
    out = connect(env, emulator)
    assert out["connected"] is True
    assert out["status"] == "Microsoft Entra ID is connected to entrasync."
    shown = cli(env, "settings", "show")
    assert env["ENTRASYNC_CLIENT_SECRET"] not in repr(out) + repr(shown)
    # §2 defaults after connecting: all users, Manual refresh, Auto-sync, no notification, no filters.
    assert shown["strategy"] == "manual" and shown["mode"] == "auto" and shown["notify"] is False
    assert not shown["graph_filter_on"] and not shown["email_filter_on"] and not shown["group_filter_on"]


def test_first_sync_mirrors_enabled_users_with_managers(env: dict[str, str], emulator: Any, admin: Any) -> None:
    users = _first_sync(env, emulator, admin)
    assert_directory_matches(env, users, enabled_ids(users))
    # Disabled accounts that are not in the directory yet are not created.
    disabled = {u["id"] for u in users if not u["accountEnabled"]}
    assert disabled, "the sample tenant should have disabled accounts"
    assert not disabled & set(by_entra(people(env)))
    audit = audit_rows(env)
    creates = [a for a in audit if a["action"] == "create" and a["entity"] == "person"]
    assert len(creates) == len(enabled_ids(users))
    assert all(a["actor"].startswith("sync run ") for a in creates)


def test_unchanged_tenant_refresh_has_no_changes_and_uses_delta(env: dict[str, str], emulator: Any, admin: Any) -> None:
    connect(env, emulator)
    first = cli(env, "refresh")
    users = admin.list_users()
    again = cli(env, "refresh")
    assert again["outcome"] == "no_changes"
    assert again["read_mode"] == "delta"
    assert again["graph_requests"] < first["graph_requests"], (first, again)
    # After an unchanged round (only the delta link moves on), the next change still arrives by delta.
    u = next(u for u in users if u["accountEnabled"])
    admin.update_user(u["id"], jobTitle="Seen Through Delta")
    third = cli(env, "refresh")
    assert third["read_mode"] == "delta" and third["counts"]["update"] == 1, third
    assert by_entra(people(env))[u["id"]]["job_title"] == "Seen Through Delta"
    assert cli(env, "refresh")["outcome"] == "no_changes"
    assert again["counts"]["matched"] == len(enabled_ids(users))


def test_joiner_mover_changed_fields_and_cleared_field(env: dict[str, str], emulator: Any, admin: Any) -> None:
    users = _first_sync(env, emulator, admin)
    enabled = [u for u in users if u["accountEnabled"] and u.get("managerId")]
    mover, changed = enabled[0], enabled[1]
    new_manager = next(u for u in users if u["accountEnabled"] and u["id"] not in (mover["id"], mover["managerId"]))
    joiner = admin.create_user(
        displayName="Zoë O'Brien",
        givenName="Zoë",
        surname="O'Brien",
        mail="zoe.obrien@contoso.com",
        userPrincipalName="zoe.obrien@contoso.com",
        accountEnabled=True,
        department="Sales",
        jobTitle="Rep",
        managerId=new_manager["id"],
    )
    admin.set_manager(mover["id"], new_manager["id"])
    admin.update_user(changed["id"], jobTitle="Chief Tea Officer", officeLocation=None)

    result = cli(env, "refresh")
    assert result["outcome"] == "applied", result
    c = result["counts"]
    assert (c["create"], c["move"], c["update"], c["archive"]) == (1, 1, 1, 0), c

    rows = by_entra(people(env))
    assert rows[joiner["id"]]["display_name"] == "Zoë O'Brien"
    assert rows[joiner["id"]]["manager_id"] == rows[new_manager["id"]]["id"]
    assert rows[mover["id"]]["manager_id"] == rows[new_manager["id"]]["id"]
    assert rows[changed["id"]]["job_title"] == "Chief Tea Officer"
    assert rows[changed["id"]]["office_location"] is None

    run = cli(env, "runs", "show", str(result["run_id"]))
    kinds = {(ch["kind"], ch["entra_id"]) for ch in run["changes"]}
    assert ("move", mover["id"]) in kinds and ("update", changed["id"]) in kinds and ("create", joiner["id"]) in kinds
    trail = audit_rows(env, "--person", str(rows[changed["id"]]["id"]))
    fields = {(a["field"], a["new"]) for a in trail if a["action"] == "update"}
    assert ("job_title", "Chief Tea Officer") in fields and ("office_location", None) in fields
    assert_directory_matches(env, admin.list_users(), enabled_ids(admin.list_users()))


def test_leavers_soft_hard_disabled_and_rehire(env: dict[str, str], emulator: Any, admin: Any) -> None:
    users = _first_sync(env, emulator, admin)
    plain = [u for u in users if u["accountEnabled"]]
    soft, hard, disabled = plain[3], plain[4], plain[5]
    admin.soft_delete_user(soft["id"])
    admin.hard_delete_user(hard["id"])
    admin.disable_user(disabled["id"])
    result = cli(env, "refresh")
    assert result["counts"]["archive"] == 3 and result["outcome"] == "applied", result
    run = cli(env, "runs", "show", str(result["run_id"]))
    reasons = {ch["entra_id"]: ch["reason"] for ch in run["changes"] if ch["kind"] == "archive"}
    assert reasons == {soft["id"]: "soft_deleted", hard["id"]: "hard_deleted", disabled["id"]: "disabled"}
    rows = by_entra(people(env))
    for u in (soft, hard, disabled):
        assert rows[u["id"]]["status"] == "archived"
        assert rows[u["id"]]["archived_at"] is not None
        assert rows[u["id"]]["display_name"] == u["displayName"], "archived people keep their data"

    admin.restore_user(soft["id"])
    result = cli(env, "refresh")
    assert result["counts"]["restore"] == 1, result
    assert by_entra(people(env))[soft["id"]]["status"] == "active"
    assert_directory_matches(env, admin.list_users(), enabled_ids(admin.list_users()))


def test_out_of_scope_after_filter_change(env: dict[str, str], emulator: Any, admin: Any) -> None:
    users = _first_sync(env, emulator, admin)
    victim = next(u for u in users if u["accountEnabled"] and u.get("mail"))
    cli(env, "settings", "set", "--email-exclude", victim["mail"], "--guard-percent", "100")
    result = cli(env, "refresh")
    assert result["counts"]["archive"] == 1, result
    run = cli(env, "runs", "show", str(result["run_id"]))
    assert [(c["entra_id"], c["reason"]) for c in run["changes"] if c["kind"] == "archive"] == [
        (victim["id"], "out_of_scope")
    ]
