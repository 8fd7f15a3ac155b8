"""Issue 3, done-means 2–6 through the CLI: filters, Manual comparison and overrides, manual edits,
the safety guard, and faults that must never archive anyone."""

from __future__ import annotations

from typing import Any

import pytest
from e2e_helpers import audit_rows, by_entra, cli, connect, enabled_ids, nested_group, people

from entrasync.adapters.db.engine import make_engine


def _sync(env: dict[str, str], emulator: Any) -> dict[str, Any]:
    connect(env, emulator)
    out = cli(env, "refresh")
    assert out["outcome"] == "applied", out
    return out


def _active_entra_ids(env: dict[str, str]) -> set[str]:
    return {p["entra_id"] for p in people(env, "active") if p["entra_id"]}


# ---- filters (§3) ------------------------------------------------------------------------------


def test_each_filter_alone_and_combined_gives_exactly_the_scope(env: dict[str, str], emulator: Any, admin: Any) -> None:
    connect(env, emulator)
    users = [u for u in admin.list_users() if u["accountEnabled"]]
    nested_id, nested_members = nested_group(admin)

    # Graph filter that needs an advanced query: endsWith on mail.
    cli(env, "settings", "set", "--graph-filter", "endsWith(mail,'@contoso.com')", "--guard-percent", "100")
    cli(env, "refresh")
    want = {u["id"] for u in users if (u.get("mail") or "").lower().endswith("@contoso.com")}
    assert _active_entra_ids(env) == want

    # E-mail include/exclude alone (exclude wins).
    cli(env, "settings", "set", "--graph-filter", "", "--email-include", "a,e", "--email-exclude", "ar")
    cli(env, "refresh")

    def email(u: dict[str, Any]) -> str:
        return str(u.get("mail") or u["userPrincipalName"]).lower()

    want = {u["id"] for u in users if ("a" in email(u) or "e" in email(u)) and "ar" not in email(u)}
    assert _active_entra_ids(env) == want

    # A nested group alone.
    cli(env, "settings", "set", "--no-email-filter", "--groups", nested_id)
    cli(env, "refresh")
    assert _active_entra_ids(env) == {u["id"] for u in users if u["id"] in nested_members}

    # All combined.
    cli(
        env,
        "settings",
        "set",
        "--graph-filter",
        "endsWith(mail,'@contoso.com')",
        "--email-include",
        "a",
        "--email-exclude",
        "ar",
        "--groups",
        nested_id,
    )
    cli(env, "refresh")
    want = {
        u["id"]
        for u in users
        if (u.get("mail") or "").lower().endswith("@contoso.com")
        and "a" in email(u)
        and "ar" not in email(u)
        and u["id"] in nested_members
    }
    assert _active_entra_ids(env) == want


def test_graph_filter_is_tried_on_save(env: dict[str, str], emulator: Any) -> None:
    connect(env, emulator)
    ok = cli(env, "settings", "set", "--graph-filter", "department eq 'Sales'")
    assert isinstance(ok["matching_users"], int) and ok["matching_users"] > 0
    bad = cli(env, "settings", "set", "--graph-filter", "department eq", ok=False)
    assert bad.exit_code != 0
    assert "Graph" in bad.stderr and "Traceback" not in bad.stderr
    assert cli(env, "settings", "show")["graph_filter"] == "department eq 'Sales'", "a failed save changes nothing"
    missing = cli(env, "settings", "set", "--groups", "00000000-0000-0000-0000-000000000000", ok=False)
    assert missing.exit_code != 0 and "No such group" in missing.stderr


# ---- Manual comparison (§4.5) ------------------------------------------------------------------


def test_manual_comparison_review_reject_override_and_stale_plan(
    env: dict[str, str], emulator: Any, admin: Any
) -> None:
    _sync(env, emulator)
    cli(env, "settings", "set", "--mode", "manual")
    users = [u for u in admin.list_users() if u["accountEnabled"]]
    a, b = users[0], users[1]
    admin.update_user(a["id"], jobTitle="Rejected Title")
    admin.update_user(b["id"], jobTitle="Accepted Title")
    before = by_entra(people(env))

    out = cli(env, "refresh")
    assert out["outcome"] == "awaiting_review"
    assert by_entra(people(env))[a["id"]]["job_title"] == before[a["id"]]["job_title"], "refresh left directory as is"
    plan = cli(env, "plan", "show")
    ids = {c["entra_id"]: c["id"] for c in plan["changes"]}
    assert set(ids) == {a["id"], b["id"]}

    cli(env, "plan", "apply", "--reject", str(ids[a["id"]]))
    rows = by_entra(people(env))
    assert rows[a["id"]]["job_title"] == before[a["id"]]["job_title"]
    assert rows[b["id"]]["job_title"] == "Accepted Title"

    # The rejected change is not proposed again while Entra's value stays the same...
    again = cli(env, "refresh")
    assert again["outcome"] == "no_changes" and again["counts"]["overridden"] == 1
    # ...and is proposed again once Entra's value changes.
    admin.update_user(a["id"], jobTitle="Another Title")
    third = cli(env, "refresh")
    assert third["outcome"] == "awaiting_review" and third["counts"]["update"] == 1

    # Staleness is per person (issue 12.3): a hand edit to someone the plan does not change leaves it
    # applicable; one to a person it changes makes Apply refuse, naming them.
    from entrasync.config import Config
    from entrasync.services import people as people_svc
    from entrasync.services.context import Actor, AppContext

    ctx = AppContext.create(Config(**{k.removeprefix("ENTRASYNC_").lower(): v for k, v in env.items()}))  # type: ignore[arg-type]
    people_svc.edit_person(ctx, ctx.org_id(), Actor("test"), rows[b["id"]]["id"], {"job_title": "Hand edit"})
    people_svc.edit_person(ctx, ctx.org_id(), Actor("test"), rows[a["id"]]["id"], {"office_location": "Moved desk"})
    stale = cli(env, "plan", "apply", ok=False)
    a_name = rows[a["id"]]["display_name"] or rows[a["id"]]["email"]
    assert stale.exit_code != 0 and a_name in stale.stderr and "changed" in stale.stderr, stale.stderr
    assert (rows[b["id"]]["display_name"] or rows[b["id"]]["email"]) not in stale.stderr

    # A newer refresh replaces the waiting plan.
    fourth = cli(env, "refresh")
    old = cli(env, "plan", "apply", "--run", str(third["run_id"]), ok=False)
    assert old.exit_code != 0 and "replaced by a newer refresh" in old.stderr
    plan = cli(env, "plan", "show")
    assert plan["run_id"] == fourth["run_id"]
    manual = [d for c in plan["changes"] for d in c["diffs"] if d["manual_edit"]]
    assert any(d["field"] == "job_title" and d["old"] == "Hand edit" for d in manual), plan
    # A plan waiting for review is not refused because of an edit to someone else.
    people_svc.edit_person(ctx, ctx.org_id(), Actor("test"), users_outside_plan(env, plan), {"office_location": "x"})
    assert cli(env, "plan", "apply")["applied"]["update"] >= 1
    ctx.db.dispose()


def users_outside_plan(env: dict[str, str], plan: dict[str, Any]) -> int:
    """A person the plan does not change."""
    changed = {c["person_id"] for c in plan["changes"]}
    return next(p["id"] for p in people(env, "active") if p["id"] not in changed)


# ---- manual people (§1, §4.3, §4.4) ------------------------------------------------------------


def test_manual_people_are_linked_or_overwritten(env: dict[str, str], emulator: Any, admin: Any) -> None:
    from entrasync.config import Config
    from entrasync.services import people as people_svc
    from entrasync.services.context import Actor, AppContext

    ctx = AppContext.create(Config(**{k.removeprefix("ENTRASYNC_").lower(): v for k, v in env.items()}))  # type: ignore[arg-type]
    org = ctx.org_id()
    users = [u for u in admin.list_users() if u["accountEnabled"] and u.get("mail")]
    twin = users[0]
    linked_id = people_svc.add_person(
        ctx, org, Actor("hr", super_admin=True), {"email": twin["mail"].upper(), "display_name": "Typed By Hand"}
    )
    stray = people_svc.add_person(
        ctx, org, Actor("hr", super_admin=True), {"email": "nobody@elsewhere.example", "display_name": "Stray"}
    )
    boss = people_svc.add_person(
        ctx, org, Actor("hr", super_admin=True), {"email": "boss@elsewhere.example", "roles": ["super_admin"]}
    )

    connect(env, emulator)
    cli(env, "settings", "set", "--mode", "manual", "--guard-percent", "100")
    cli(env, "refresh")
    plan = cli(env, "plan", "show", "--per-page", "500")
    link = next(c for c in plan["changes"] if c["person_id"] == linked_id)
    assert link["reason"] == "first_link" and any(d["manual_edit"] for d in link["diffs"])
    archive = next(c for c in plan["changes"] if c["person_id"] == stray)
    assert archive["kind"] == "archive" and archive["reason"] == "not_in_entra"
    boss_rows = [c for c in plan["changes"] if c["person_id"] == boss]
    assert [(c["kind"], c["decision"]) for c in boss_rows] == [("keep", "kept")], "an admin added by hand is kept"
    assert "lock" in boss_rows[0]["diffs"][0]["new"]
    cli(env, "plan", "apply")

    rows = {p["id"]: p for p in people(env)}
    assert rows[linked_id]["entra_id"] == twin["id"] and rows[linked_id]["display_name"] == twin["displayName"]
    assert rows[linked_id]["source"] == "entra"
    assert rows[stray]["status"] == "archived"
    assert rows[boss]["status"] == "active"

    # A person moved by hand is moved back by the next sync, and the plan says it overwrites a manual edit.
    mover = by_entra(people(env))[users[1]["id"]]
    other = by_entra(people(env))[users[2]["id"]]
    people_svc.move_person(ctx, org, Actor("hr", super_admin=True), mover["id"], other["id"])
    cli(env, "refresh")
    plan = cli(env, "plan", "show")
    change = next(c for c in plan["changes"] if c["person_id"] == mover["id"])
    assert change["kind"] == "move"
    assert any(d["field"] == "manager" and d["manual_edit"] for d in change["diffs"])
    cli(env, "plan", "apply")
    assert {p["id"]: p for p in people(env)}[mover["id"]]["manager_id"] == mover["manager_id"]


# ---- safety guard (§4.6) -----------------------------------------------------------------------


def test_guard_holds_mass_archive_even_in_auto_sync(env: dict[str, str], emulator: Any, admin: Any) -> None:
    _sync(env, emulator)
    users = [u for u in admin.list_users() if u["accountEnabled"]]
    gone = users[: max(6, len(users) // 5)]
    for u in gone:
        admin.disable_user(u["id"])
    result = cli(env, "refresh")
    assert result["outcome"] == "held"
    assert "safety guard" in result["hold_reason"].lower() and "10" in result["hold_reason"]
    assert all(by_entra(people(env))[u["id"]]["status"] == "active" for u in gone), "held: nobody archived"
    plan = cli(env, "plan", "show")
    assert plan["outcome"] == "held" and plan["hold_reason"]
    cli(env, "plan", "apply")  # an admin confirms it
    assert all(by_entra(people(env))[u["id"]]["status"] == "archived" for u in gone)


# ---- faults (§4.1) -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "retry_after"),
    [("429", "1"), ("429", "0.5"), ("503", None), ("504", "1"), ("reset", None)],
)
def test_transient_faults_are_retried_and_the_run_completes(
    env: dict[str, str], emulator: Any, admin: Any, kind: str, retry_after: str | None
) -> None:
    connect(env, emulator)
    admin.inject_fault("/v1.0/users*", kind, count=3, retry_after=retry_after)
    result = cli(env, "refresh")
    assert result["outcome"] == "applied"
    assert result["counts"]["create"] == len(enabled_ids(admin.list_users()))


def test_a_read_that_never_completes_fails_cleanly_and_archives_nobody(
    env: dict[str, str], emulator: Any, admin: Any
) -> None:
    _sync(env, emulator)
    before = people(env)
    # Break the listing for good (more faults than the bounded retries allow) and make delta unusable.
    admin.expire_delta_tokens()
    admin.inject_fault("/v1.0/users*", "reset", count=1000)
    env = {**env, "ENTRASYNC_GRAPH_MAX_RETRY_SECONDS": "2"}
    failed = cli(env, "refresh", ok=False)
    assert failed.exit_code != 0 and "error:" in failed.stderr and "Traceback" not in failed.stderr
    assert people(env) == before, "a failed read must not change anybody"
    runs = cli(env, "runs", "list")
    assert runs[0]["outcome"] == "failed" and runs[0]["error"]
    admin.clear_faults()
    assert cli(env, "refresh")["outcome"] == "no_changes"


def test_expired_delta_token_falls_back_to_a_full_read(env: dict[str, str], emulator: Any, admin: Any) -> None:
    _sync(env, emulator)
    u = next(u for u in admin.list_users() if u["accountEnabled"])
    admin.update_user(u["id"], jobTitle="After Expiry")
    admin.expire_delta_tokens()
    result = cli(env, "refresh")
    assert result["read_mode"] == "full" and result["counts"]["update"] == 1 and result["counts"]["archive"] == 0


def test_database_holds_no_secret_in_clear(env: dict[str, str], emulator: Any, db_url: str) -> None:
    connect(env, emulator)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT secret_enc FROM connections").scalar_one()
    assert env["ENTRASYNC_CLIENT_SECRET"].encode() not in bytes(raw)
    engine.dispose()


def test_apply_is_idempotent(env: dict[str, str], emulator: Any, admin: Any) -> None:
    _sync(env, emulator)
    cli(env, "settings", "set", "--mode", "manual")
    u = next(u for u in admin.list_users() if u["accountEnabled"])
    admin.update_user(u["id"], jobTitle="Once Only")
    run = cli(env, "refresh")["run_id"]
    first = cli(env, "plan", "apply")
    assert first["applied"]["update"] == 1 and not first["already_applied"]
    n_audit = len(audit_rows(env))
    # Again (e.g. a script retrying after a crash): a no-op that says so, with or without the run id.
    for args in ((), ("--run", str(run))):
        again = cli(env, "plan", "apply", *args)
        assert again["already_applied"] is True and again["run_id"] == run
    assert len(audit_rows(env)) == n_audit
    assert by_entra(people(env))[u["id"]]["job_title"] == "Once Only"
