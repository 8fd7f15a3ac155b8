"""Issue 16 items 3 and 4 through the CLI (SQLite and PostgreSQL): ``people explain`` gives each
filter's verdict, the match and the next refresh's field diffs; ``refresh --dry-run`` and
``settings set --preview`` plan and store nothing, and a Preview is the plan the saved settings make."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from e2e_helpers import by_entra, cli, connect, expected_email, people

from entrasync.config import Config
from entrasync.services import people as people_svc
from entrasync.services.context import Actor, AppContext


def _synced(env: dict[str, str], emulator: Any, admin: Any) -> list[dict[str, Any]]:
    connect(env, emulator)
    assert cli(env, "refresh")["outcome"] == "applied"
    return [u for u in admin.list_users() if u["accountEnabled"] and u.get("mail")]


def _graph_calls(counters: dict[str, int]) -> int:
    return sum(n for k, n in counters.items() if " /v1.0/" in k)


def _explain(env: dict[str, str], who: str) -> dict[str, Any]:
    data: dict[str, Any] = cli(env, "people", "explain", who)
    return data


def test_explain_a_disabled_account(env: dict[str, str], emulator: Any, admin: Any, db_url: str) -> None:
    u = _synced(env, emulator, admin)[3]
    admin.disable_user(u["id"])
    before = admin.counters()
    tables = _tables(db_url)
    out = _explain(env, u["mail"])
    assert _tables(db_url) == tables  # read-only: not even a run
    assert out["entra_user"]["id"] == u["id"] and out["filters"]["account_enabled"] is False
    assert out["in_scope"] is False and out["match"]["kind"] == "linked"
    assert out["next_refresh"]["action"] == "archive" and out["next_refresh"]["change"]["reason"] == "disabled"
    assert out["graph_requests"] <= 6, out["graph_requests"]
    assert _graph_calls(admin.counters()) - _graph_calls(before) == out["graph_requests"]


def test_explain_by_upn_and_id_out_of_the_graph_filter(env: dict[str, str], emulator: Any, admin: Any) -> None:
    users = _synced(env, emulator, admin)
    u = next(x for x in users if x.get("department"))
    other = next(x["department"] for x in users if x.get("department") and x["department"] != u["department"])
    cli(env, "settings", "set", "--graph-filter", f"department eq '{other}'")
    for key in (u["userPrincipalName"], u["id"]):
        out = _explain(env, key)
        gf = out["filters"]["graph_filter"]
        assert gf == {"on": True, "definition": f"department eq '{other}'", "passed": False}, gf
        assert out["in_scope"] is False
        assert out["next_refresh"]["change"]["kind"] == "archive"
        assert out["next_refresh"]["change"]["reason"] == "out_of_scope"
    # A definition that needs an advanced query (ConsistencyLevel + $count), matching nobody.
    cli(env, "settings", "set", "--graph-filter", "endsWith(mail,'@nomatch.example')")
    gf = _explain(env, u["mail"])["filters"]["graph_filter"]
    assert gf["passed"] is False and gf["definition"] == "endsWith(mail,'@nomatch.example')"
    cli(env, "settings", "set", "--graph-filter", f"department eq '{other}'")
    inside = next(x for x in users if x.get("department") == other)
    out = _explain(env, inside["mail"])
    assert out["filters"]["graph_filter"]["passed"] is True and out["in_scope"] is True
    assert out["next_refresh"]["action"] == "none" and out["match"]["kind"] == "linked"


def test_explain_an_e_mail_exclude_rule(env: dict[str, str], emulator: Any, admin: Any) -> None:
    u = _synced(env, emulator, admin)[5]
    local = u["mail"].split("@")[0]
    cli(env, "settings", "set", "--email-exclude", local.upper())
    out = _explain(env, u["mail"])
    ef = out["filters"]["email_filter"]
    assert ef["on"] and ef["passed"] is False and ef["excluded_by"] == local.casefold(), ef
    assert "exclude rule" in ef["reason"] and out["in_scope"] is False
    text = cli_text(env, "people", "explain", u["mail"])
    assert "excluded: the e-mail contains" in text and "in scope:        no" in text


def test_explain_groups_nested_path_and_not_a_member(env: dict[str, str], emulator: Any, admin: Any) -> None:
    users = _synced(env, emulator, admin)
    inner_user, outsider = users[1], users[2]
    inner = admin.create_group("Explain Inner", [inner_user["id"]])
    outer = admin.create_group("Explain Outer", [inner["id"]])
    cli(env, "settings", "set", "--groups", outer["id"])
    out = _explain(env, inner_user["mail"])
    grp = out["filters"]["group_filter"]
    assert grp["passed"] is True and [g["id"] for g in grp["groups"]] == [outer["id"]]
    assert [g["name"] for g in grp["path"]] == ["Explain Outer", "Explain Inner"], grp
    assert out["in_scope"] is True
    out = _explain(env, outsider["mail"])
    assert out["filters"]["group_filter"]["passed"] is False and out["in_scope"] is False
    assert out["next_refresh"]["change"]["kind"] == "archive"
    assert "via Explain Outer > Explain Inner" in cli_text(env, "people", "explain", inner_user["mail"])


def test_explain_an_e_mail_claimed_by_two_users(env: dict[str, str], emulator: Any, admin: Any) -> None:
    u = _synced(env, emulator, admin)[4]
    twin = admin.create_user(
        displayName="Twin", userPrincipalName="twin.explain@" + u["userPrincipalName"].split("@")[1], mail=u["mail"]
    )
    out = _explain(env, u["mail"])
    assert out["match"]["kind"] == "conflict", out["match"]
    assert set(out["match"]["conflicts"][0]["entra_ids"]) == {u["id"], twin["id"]}
    assert out["match"]["same_email_users"] == [twin["id"]] or out["entra_user"]["id"] == twin["id"]
    assert out["next_refresh"]["action"] == "none"


def test_explain_an_e_mail_whose_person_is_linked_to_another_user(
    env: dict[str, str], emulator: Any, admin: Any
) -> None:
    u = _synced(env, emulator, admin)[9]
    person = by_entra(people(env))[u["id"]]
    domain = u["userPrincipalName"].split("@")[1]
    admin.update_user(u["id"], mail=f"renamed.{u['mail']}")
    newcomer = admin.create_user(displayName="Newcomer", userPrincipalName=f"newcomer@{domain}", mail=u["mail"])
    out = _explain(env, newcomer["id"])
    assert out["entra_user"]["id"] == newcomer["id"] and out["match"]["kind"] == "conflict", out["match"]
    assert out["match"]["conflicts"] == [{"email": u["mail"], "entra_ids": [newcomer["id"]], "person_id": person["id"]}]
    assert f"belongs to person #{person['id']}, linked to another Entra user" in out["match"]["summary"]
    assert out["next_refresh"]["action"] == "none"
    # Asked by the person's (old) e-mail: that person's own user, and the conflict naming the newcomer.
    mine = _explain(env, u["mail"])
    assert mine["entra_user"]["id"] == u["id"] and mine["person"]["id"] == person["id"]
    assert mine["match"]["conflicts"][0]["entra_ids"] == [newcomer["id"]]
    assert [(d["field"], d["new"]) for d in mine["next_refresh"]["diffs"]] == [("email", f"renamed.{u['mail']}")]


def test_explain_a_pending_change_with_an_override_and_a_hand_edit(
    env: dict[str, str], emulator: Any, admin: Any, config: Config
) -> None:
    u = _synced(env, emulator, admin)[6]
    cli(env, "settings", "set", "--mode", "manual")
    admin.update_user(u["id"], jobTitle="Rejected Title")
    cli(env, "refresh")
    change = next(c for c in cli(env, "plan", "show")["changes"] if c["entra_id"] == u["id"])
    cli(env, "plan", "apply", "--reject", str(change["id"]))
    person = by_entra(people(env))[u["id"]]
    ctx = AppContext.create(config, run_migrations=False)
    try:
        people_svc.edit_person(ctx, ctx.org_id(), Actor.cli(), person["id"], {"office_location": "By hand"})
    finally:
        ctx.db.dispose()
    admin.update_user(u["id"], displayName="Renamed In Entra")
    out = _explain(env, u["mail"])
    assert out["match"]["kind"] == "linked" and out["person"]["id"] == person["id"]
    diffs = {d["field"]: d for d in out["next_refresh"]["diffs"]}
    assert diffs["display_name"]["new"] == "Renamed In Entra" and not diffs["display_name"]["overridden"]
    assert diffs["office_location"]["old"] == "By hand" and diffs["office_location"]["manual_edit"] is True
    assert diffs["job_title"]["new"] == "Rejected Title" and diffs["job_title"]["overridden"] is True
    assert diffs["job_title"]["override"]["by"] == "cli"
    text = cli_text(env, "people", "explain", u["mail"])
    assert "[rejected in review: kept back]" in text and "[edited by hand: overwritten]" in text
    # Read-only: the plan the next refresh makes is the one explained.
    cli(env, "refresh")
    mine = [c for c in cli(env, "plan", "show")["changes"] if c["entra_id"] == u["id"]]
    proposed = next(c for c in mine if c["kind"] != "overridden")
    assert {d["field"] for d in proposed["diffs"]} == {"display_name", "office_location"}


def test_explain_a_soft_deleted_user(env: dict[str, str], emulator: Any, admin: Any) -> None:
    u = _synced(env, emulator, admin)[8]
    admin.soft_delete_user(u["id"])
    out = _explain(env, u["mail"])
    assert out["entra_user"] is None and out["person"]["entra_id"] == u["id"]
    assert out["match"]["kind"] == "no_user" and "soft-deleted" in out["match"]["summary"]
    assert (out["next_refresh"]["change"]["kind"], out["next_refresh"]["change"]["reason"]) == (
        "archive",
        "soft_deleted",
    )


def test_explain_someone_unknown(env: dict[str, str], emulator: Any, admin: Any) -> None:
    _synced(env, emulator, admin)
    result = cli(env, "people", "explain", "nobody@nowhere.example", ok=False)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "neither a user in Microsoft Entra ID nor a person in the directory" in result.stderr


def test_explain_a_joiner_and_a_person_added_by_hand(
    env: dict[str, str], emulator: Any, admin: Any, config: Config
) -> None:
    users = _synced(env, emulator, admin)
    domain = users[0]["userPrincipalName"].split("@")[1]
    new = admin.create_user(displayName="New Joiner", userPrincipalName=f"new.joiner@{domain}", mail=f"nj@{domain}")
    out = _explain(env, new["id"])
    assert out["person"] is None and out["match"]["kind"] == "new"
    assert out["next_refresh"]["change"]["kind"] == "create"
    assert out["next_refresh"]["change"]["target_email"] == expected_email(new)
    ctx = AppContext.create(config, run_migrations=False)
    try:
        people_svc.add_person(ctx, ctx.org_id(), Actor.cli(), {"email": f"contractor@{domain}", "display_name": "C"})
    finally:
        ctx.db.dispose()
    out = _explain(env, f"CONTRACTOR@{domain}")
    assert out["entra_user"] is None and out["person"]["source"] == "manual"
    assert out["match"]["kind"] == "no_user" and out["filters"]["account_enabled"] is None
    assert (out["next_refresh"]["change"]["kind"], out["next_refresh"]["change"]["reason"]) == (
        "archive",
        "not_in_entra",
    )


def _tables(db_url: str) -> dict[str, list[Any]]:
    eng = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        meta = sa.MetaData()
        meta.reflect(eng)
        with eng.connect() as conn:
            return {
                name: sorted(map(repr, conn.execute(sa.select(table)).all()))
                for name, table in meta.tables.items()
                if not name.startswith("procrastinate")
            }
    finally:
        eng.dispose()


def test_refresh_dry_run_stores_nothing(env: dict[str, str], emulator: Any, admin: Any, db_url: str) -> None:
    users = _synced(env, emulator, admin)
    admin.update_user(users[2]["id"], jobTitle="Dry Run Title")
    admin.disable_user(users[3]["id"])
    before = _tables(db_url)
    out = cli(env, "refresh", "--dry-run")
    assert out["dry_run"] is True and out["counts"]["update"] == 1 and out["counts"]["archive"] == 1, out
    kinds = {(c["kind"], c["entra_id"]) for c in out["changes"]}
    assert kinds == {("update", users[2]["id"]), ("archive", users[3]["id"])}
    assert _tables(db_url) == before  # no run, no plan, no delta state, no audit, no budget rows
    text = cli_text(env, "refresh", "--dry-run")
    assert text.startswith("Dry run (nothing stored): create 0, update 1") and "'Dry Run Title'" in text
    assert _tables(db_url) == before


def test_a_preview_is_the_plan_the_saved_settings_make(
    env: dict[str, str], emulator: Any, admin: Any, db_url: str
) -> None:
    users = _synced(env, emulator, admin)
    cli(env, "settings", "set", "--mode", "manual")
    domain = users[0]["userPrincipalName"].split("@")[1]
    admin.create_user(displayName="Preview Joiner", userPrincipalName=f"pj@{domain}", mail=f"pj@{domain}")
    exclude = users[7]["mail"].split("@")[0]
    before = _tables(db_url)
    preview = cli(env, "settings", "set", "--email-exclude", exclude, "--preview")
    assert _tables(db_url) == before
    assert preview["settings"]["email_exclude"] == [exclude.casefold()] and preview["counts"]["create"] == 1
    cli(env, "settings", "set", "--email-exclude", exclude)
    run = cli(env, "refresh")
    assert run["outcome"] == "awaiting_review"
    plan = cli(env, "plan", "show")
    assert {k: run["counts"][k] for k in preview["counts"]} == preview["counts"]
    proposed = sorted(
        (c["kind"], c["entra_id"], c["fingerprint"]) for c in plan["changes"] if c["kind"] != "overridden"
    )
    assert proposed == sorted((c["kind"], c["entra_id"], c["fingerprint"]) for c in preview["changes"])
    assert len(proposed) == preview["total_changes"] >= 2
    cli(env, "plan", "apply")
    # Groups (nested) and a Graph filter together: the preview is again the saved settings' plan.
    inner = admin.create_group("Preview Inner", [u["id"] for u in users[:6]])
    outer = admin.create_group("Preview Outer", [inner["id"], users[6]["id"]])
    dept = next(u["department"] for u in users[:7] if u.get("department"))
    args = ("--groups", outer["id"], "--graph-filter", f"department eq '{dept}'")
    preview = cli(env, "settings", "set", *args, "--preview")
    assert preview["counts"]["archive"] > 0 and preview["matching_users"] is not None
    cli(env, "settings", "set", *args)
    run = cli(env, "refresh")
    plan = cli(env, "plan", "show", "--per-page", "500")
    assert {k: run["counts"][k] for k in preview["counts"]} == preview["counts"]
    proposed = sorted(
        (c["kind"], c["entra_id"], c["fingerprint"]) for c in plan["changes"] if c["kind"] != "overridden"
    )
    first = sorted((c["kind"], c["entra_id"], c["fingerprint"]) for c in preview["changes"])
    assert set(first) <= set(proposed) and len(proposed) == preview["total_changes"]
    # Invalid settings: refused as a Save refuses them, one line, exit 2 or 1.
    bad = cli(env, "settings", "set", "--guard-percent", "0", "--preview", ok=False)
    assert bad.exit_code != 0 and bad.stderr.startswith("error: ") and "Safety guard" in bad.stderr


def cli_text(env: dict[str, str], *args: str) -> str:
    from e2e_helpers import entrasync, runner

    result = runner.invoke(entrasync, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr or result.output
    return str(result.stdout)


def test_explain_when_graph_refuses_a_read(env: dict[str, str], emulator: Any, admin: Any) -> None:
    users = _synced(env, emulator, admin)
    group = admin.create_group("Refused Group", [users[0]["id"]])
    cli(env, "settings", "set", "--groups", group["id"])
    admin.set_app_permissions(["User.Read.All"])  # no group reads any more: 403 on memberOf
    result = cli(env, "people", "explain", users[0]["mail"], ok=False)
    assert result.exit_code == 1 and result.stdout == "", result.stdout
    assert result.stderr.startswith("error: Reading Microsoft Entra ID failed:") and result.stderr.count("\n") == 1
