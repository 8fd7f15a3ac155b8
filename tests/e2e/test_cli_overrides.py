"""Issue 12.1 and 12.3 through the CLI (SQLite and PostgreSQL): overrides field by field, listed,
revoked and audited; overridden changes reported as such; staleness per person.

Before: an override was keyed by a fingerprint of the whole Entra record. Rejecting "job title ->
X" and then changing the user's manager in Entra gave a `move` that carried the rejected job title
again, and approving it (or Auto-sync) silently undid the admin's rejection.
"""

from __future__ import annotations

from typing import Any

from e2e_helpers import audit_rows, by_entra, cli, connect, people


def _setup(env: dict[str, str], emulator: Any, admin: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    connect(env, emulator)
    assert cli(env, "refresh")["outcome"] == "applied"
    cli(env, "settings", "set", "--mode", "manual")
    users = [u for u in admin.list_users() if u["accountEnabled"]]
    # Ann reports to the first manager; another enabled user becomes her next manager.
    ann = next(u for u in users if u.get("managerId"))
    new_boss = next(u for u in users if u["id"] not in (ann["id"], ann["managerId"]))
    return ann, new_boss, by_entra(people(env))[ann["id"]]


def test_a_rejected_job_title_survives_a_later_manager_change(env: dict[str, str], emulator: Any, admin: Any) -> None:
    ann, new_boss, before = _setup(env, emulator, admin)
    admin.update_user(ann["id"], jobTitle="Rejected Recruiter")
    first = cli(env, "refresh")
    change = next(c for c in cli(env, "plan", "show")["changes"] if c["entra_id"] == ann["id"])
    assert change["kind"] == "update" and [d["field"] for d in change["diffs"]] == ["job_title"]
    cli(env, "plan", "apply", "--reject", str(change["id"]))

    # The override is listed (person, field, Entra's value, who, when) and the rejection audited.
    (listed,) = [o for o in cli(env, "overrides", "list") if o["person_id"] == before["id"]]
    assert (listed["part"], listed["label"], listed["created_by"]) == ("job_title", "Rejected Recruiter", "cli")
    assert any(a["action"] == "reject" and a["entity"] == "override" for a in audit_rows(env))

    # Entra moves Ann to another manager: the plan is a move WITHOUT the rejected job title ...
    admin.set_manager(ann["id"], new_boss["id"])
    second = cli(env, "refresh")
    assert second["outcome"] == "awaiting_review" and second["counts"]["overridden"] == 1, second
    plan = cli(env, "plan", "show")
    mine = [c for c in plan["changes"] if c["entra_id"] == ann["id"]]
    assert [(c["kind"], [d["field"] for d in c["diffs"]]) for c in mine] == [
        ("move", ["manager"]),
        ("overridden", ["job_title"]),  # listed in the plan as overridden, not as an update
    ]
    # ... and the overridden part is reported as such, not under its original kind.
    run = cli(env, "runs", "show", str(second["run_id"]))
    overridden = [c for c in run["changes"] if c["decision"] == "overridden"]
    assert [(c["kind"], c["overridden_kind"], [d["field"] for d in c["diffs"]]) for c in overridden] == [
        ("overridden", "move", ["job_title"])  # the part of the move that stays rejected
    ]
    # Approving the move keeps the admin's rejection.
    cli(env, "plan", "apply")
    after = by_entra(people(env))[ann["id"]]
    assert (
        after["job_title"] == before["job_title"] and after["manager_id"] == by_entra(people(env))[new_boss["id"]]["id"]
    )

    # Revoking the override (audited): the next refresh proposes the job title again.
    cli(env, "overrides", "revoke", str(listed["id"]))
    assert cli(env, "overrides", "list") == []
    assert any(a["action"] == "revoke" and a["entity"] == "override" for a in audit_rows(env))
    third = cli(env, "refresh")
    again = [c for c in cli(env, "plan", "show")["changes"] if c["entra_id"] == ann["id"] and c["kind"] != "overridden"]
    assert [d["field"] for d in again[0]["diffs"]] == ["job_title"] and third["counts"]["overridden"] == 0
    assert first["run_id"] < second["run_id"] < third["run_id"]


def test_runs_record_proposed_and_applied_counts_and_who_applied(
    env: dict[str, str], emulator: Any, admin: Any
) -> None:
    ann, _boss, _before = _setup(env, emulator, admin)
    others = [u for u in admin.list_users() if u["accountEnabled"] and u["id"] != ann["id"]][:2]
    for u in (ann, *others):
        admin.update_user(u["id"], jobTitle="Proposed " + u["id"][:4])
    out = cli(env, "refresh")
    plan = cli(env, "plan", "show")
    reject = next(c["id"] for c in plan["changes"] if c["entra_id"] == ann["id"])
    cli(env, "plan", "apply", "--reject", str(reject))
    run = cli(env, "runs", "show", str(out["run_id"]))
    assert run["counts"]["update"] == 3  # proposed
    assert run["applied_counts"]["update"] == 2 and run["applied_counts"]["rejected"] == 1
    assert run["applied_by"] == "cli" and run["applied_at"]
    # The apply's audit rows carry the person (here the CLI) and the run: "applied run N, by P".
    rows = audit_rows(env, "--run", str(out["run_id"]))
    updates = [a for a in rows if a["action"] == "update"]
    assert len(updates) == 2 and {a["actor"] for a in updates} == {f"applied run {out['run_id']}, by cli"}


def test_runs_show_pages_its_changes(env: dict[str, str], emulator: Any, admin: Any) -> None:
    connect(env, emulator)
    first = cli(env, "refresh")
    total = first["counts"]["create"]
    page1 = cli(env, "runs", "show", str(first["run_id"]), "--per-page", "10")
    page2 = cli(env, "runs", "show", str(first["run_id"]), "--per-page", "10", "--page", "2")
    assert len(page1["changes"]) == 10 and page1["more"] is True and page1["changes_total"] >= total
    assert {c["id"] for c in page1["changes"]}.isdisjoint({c["id"] for c in page2["changes"]})


def test_audit_filters_by_person_email_run_actor_and_date_and_exports_csv(
    env: dict[str, str], emulator: Any, admin: Any, tmp_path: Any
) -> None:
    connect(env, emulator)
    first = cli(env, "refresh")
    someone = people(env)[0]
    by_mail = audit_rows(env, "--person", someone["email"])
    assert by_mail and {a["person_id"] for a in by_mail} == {someone["id"]}
    created = audit_rows(env, "--run", str(first["run_id"]))
    assert len([a for a in created if a["action"] == "create"]) == first["counts"]["create"]
    assert all(a["actor"] == f"sync run {first['run_id']}" for a in created)
    assert audit_rows(env, "--actor", "sync run") and audit_rows(env, "--since", "2999-01-01") == []
    out = tmp_path / "audit.csv"
    done = cli(env, "audit", "export", "--run", str(first["run_id"]), "--output", str(out))
    lines = out.read_text().splitlines()
    assert done["rows"] == len(created) == len(lines) - 1 and lines[0].startswith("id,at,actor")
    bad = cli(env, "audit", "list", "--since", "yesterday", ok=False)
    assert bad.exit_code != 0 and bad.stderr.count("\n") == 1 and "--since" in bad.stderr
