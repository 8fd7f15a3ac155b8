"""Issue 16 through the CLI (SQLite and PostgreSQL): more of Entra by default, the attribute mapping a
custom field from an extension attribute and a directory extension, a create-only field, a default, people
added by hand kept, the first link by employee id, and an unknown source refused with Graph's reason."""

from __future__ import annotations

from typing import Any

from e2e_helpers import audit_rows, by_entra, cli, connect, people
from tests.feed_helpers import all_events

from entrasync.config import Config
from entrasync.services import people as people_svc
from entrasync.services.context import Actor, AppContext

HR = Actor("hr", super_admin=True)


def _ctx(env: dict[str, str]) -> AppContext:
    return AppContext.create(Config(**{k.removeprefix("ENTRASYNC_").lower(): v for k, v in env.items()}))  # type: ignore[arg-type]


def _enabled(admin: Any) -> list[dict[str, Any]]:
    return [u for u in admin.list_users() if u["accountEnabled"]]


def test_more_of_entra_is_read_by_default(env: dict[str, str], emulator: Any, admin: Any) -> None:
    connect(env, emulator)
    cli(env, "refresh")
    rows = by_entra(people(env))
    users = {u["id"]: u for u in _enabled(admin)}
    hired = [u for u in users.values() if u.get("employeeHireDate")]
    assert hired and any(not u.get("employeeHireDate") for u in users.values()), "the sample leaves some empty"
    for u in users.values():
        p = rows[u["id"]]
        assert p["start_date"] == ((u.get("employeeHireDate") or "")[:10] or None)
        assert p["employee_type"] == u.get("employeeType")
        assert p["company_name"] == u.get("companyName")
        assert p["city"] == u.get("city") and p["country"] == u.get("country")
        assert p["mobile_phone"] == u.get("mobilePhone")
        assert p["business_phones"] == list(u.get("businessPhones") or [])
        assert p["preferred_language"] == u.get("preferredLanguage")
    # People filters on them (any case, combined): the CLI lists exactly who holds those values.
    active = people(env, "active")
    sample = next(p for p in active if p["city"] and p["company_name"])
    city, company = sample["city"], sample["company_name"]
    listed = cli(env, "people", "list", "--city", city.lower(), "--company", company.upper(), "--per-page", "500")
    want = sorted(p["id"] for p in active if p["city"] == city and p["company_name"] == company)
    assert want and sorted(p["id"] for p in listed["items"]) == want and listed["total"] == len(want)
    # A change in Entra travels by delta like the rest.
    someone = hired[0]
    admin.update_user(someone["id"], city="Reykjavík", businessPhones=["+354 555 0100"])
    out = cli(env, "refresh")
    assert out["read_mode"] == "delta" and out["counts"]["update"] == 1
    p = by_entra(people(env))[someone["id"]]
    assert p["city"] == "Reykjavík" and p["business_phones"] == ["+354 555 0100"]
    # The change feed carries them: in the created event's person, and as an updated event's diffs.
    feed = all_events(_ctx(env), _ctx(env).org_id())
    created = next(e for e in feed if e["type"] == "person.created" and e["person_id"] == p["id"])
    assert created["data"]["person"]["start_date"] == p["start_date"]
    updated = [e for e in feed if e["type"] == "person.updated" and e["person_id"] == p["id"]]
    diffs = {c["field"]: c["new"] for e in updated for c in e["data"]["changes"]}
    assert diffs == {"city": "Reykjavík", "business_phones": ["+354 555 0100"]}


def test_custom_field_from_an_extension_attribute_syncs_and_changes(
    env: dict[str, str], emulator: Any, admin: Any
) -> None:
    connect(env, emulator)
    cli(env, "refresh")
    mapped = cli(env, "settings", "map", "custom", "--source", "onPremisesExtensionAttributes.extensionAttribute1",
                 "--label", "Cost centre")  # fmt: skip
    assert mapped["changed"] == ["mapping"]
    assert mapped["stored"]["custom_1"]["source"] == "onPremisesExtensionAttributes.extensionAttribute1"
    table = cli(env, "settings", "mapping")
    row = next(r for r in table["mapping"] if r["field"] == "custom_1")
    assert row["label"] == "Cost centre" and row["write"] == "always"
    audit = [a for a in audit_rows(env) if a["entity"] == "settings" and a["field"] == "mapping"]
    assert audit and "Cost centre" in (audit[0]["new"] or "")

    out = cli(env, "refresh")
    assert out["read_mode"] == "full", "a mapping change reads Entra in full"
    users = {u["id"]: u for u in _enabled(admin)}
    rows = by_entra(people(env))
    with_value = [u for u in users.values() if (u["onPremisesExtensionAttributes"] or {}).get("extensionAttribute1")]
    assert with_value
    for u in users.values():
        want = (u["onPremisesExtensionAttributes"] or {}).get("extensionAttribute1")
        assert rows[u["id"]]["custom_1"] == want

    # Changed in Entra: the next (delta) refresh carries it.
    target = with_value[0]
    admin.update_user(target["id"], onPremisesExtensionAttributes={"extensionAttribute1": "CC-9999"})
    out = cli(env, "refresh")
    assert out["read_mode"] == "delta" and out["counts"]["update"] == 1
    assert by_entra(people(env))[target["id"]]["custom_1"] == "CC-9999"
    # Unchanged since: the shortcut still holds with the mapping among its inputs.
    again = cli(env, "refresh")
    assert again["outcome"] == "no_changes"

    # Unmapped: the slot stops being read (the next refresh clears it, planned like any change).
    cli(env, "settings", "unmap", "custom_1")
    out = cli(env, "refresh")
    assert out["read_mode"] == "full"
    assert by_entra(people(env))[target["id"]]["custom_1"] is None


def test_directory_extension_and_default(env: dict[str, str], emulator: Any, admin: Any) -> None:
    connect(env, emulator)
    names = [e["name"] for e in admin.extension_properties()]
    grade = next(n for n in names if n.endswith("_employeeGrade"))
    cli(env, "settings", "map", "custom_3", "--source", grade, "--label", "Grade", "--default", "n/a")
    cli(env, "refresh")
    rows = by_entra(people(env))
    users = _enabled(admin)
    assert any(rows[u["id"]]["custom_3"] == "n/a" for u in users), "the default fills an empty value"
    for u in users:
        assert rows[u["id"]]["custom_3"] == (u.get(grade) or "n/a")


def test_create_only_field_is_left_alone_after_an_edit_in_entra(env: dict[str, str], emulator: Any, admin: Any) -> None:
    connect(env, emulator)
    saved = cli(env, "settings", "map", "job_title", "--create-only")
    assert saved["stored"]["job_title"] == {"source": "jobTitle", "create_only": True}
    cli(env, "refresh")
    u = next(u for u in _enabled(admin) if u.get("jobTitle"))
    assert by_entra(people(env))[u["id"]]["job_title"] == u["jobTitle"], "written on create"
    admin.update_user(u["id"], jobTitle="Chief Renamer", displayName="Renamed In Entra")
    cli(env, "refresh")
    p = by_entra(people(env))[u["id"]]
    assert p["job_title"] == u["jobTitle"], "a create-only field keeps the person's value"
    assert p["display_name"] == "Renamed In Entra", "the other fields still follow Entra"
    # A joiner gets Entra's value.
    joiner = admin.create_user(displayName="New Joiner", userPrincipalName="new.joiner@contoso.com",
                               mail="new.joiner@contoso.com", jobTitle="Apprentice")  # fmt: skip
    cli(env, "refresh")
    assert by_entra(people(env))[joiner["id"]]["job_title"] == "Apprentice"


def test_people_added_by_hand_are_kept_when_the_setting_says_so(env: dict[str, str], emulator: Any, admin: Any) -> None:
    ctx = _ctx(env)
    org = ctx.org_id()
    stray = people_svc.add_person(ctx, org, HR, {"email": "contractor@elsewhere.example", "display_name": "Contractor"})
    connect(env, emulator)
    saved = cli(env, "settings", "set", "--manual-people", "keep", "--mode", "manual", "--guard-percent", "100")
    assert saved["manual_people"] == "keep"
    cli(env, "refresh")
    plan = cli(env, "plan", "show", "--per-page", "500")
    rows = [c for c in plan["changes"] if c["person_id"] == stray]
    assert [(c["kind"], c["decision"]) for c in rows] == [("keep", "kept")]
    assert "People added by hand: keep" in rows[0]["diffs"][0]["new"]
    cli(env, "plan", "apply")
    assert {p["id"]: p for p in people(env)}[stray]["status"] == "active"

    # Back to archive: the next refresh proposes the archive (not_in_entra).
    cli(env, "settings", "set", "--manual-people", "archive")
    cli(env, "refresh")
    plan = cli(env, "plan", "show", "--per-page", "500")
    rows = [c for c in plan["changes"] if c["person_id"] == stray]
    assert [(c["kind"], c["reason"]) for c in rows] == [("archive", "not_in_entra")]


def test_first_link_by_employee_id(env: dict[str, str], emulator: Any, admin: Any) -> None:
    ctx = _ctx(env)
    org = ctx.org_id()
    u = next(u for u in _enabled(admin) if u.get("employeeId") and u.get("mail"))
    # Typed by hand with another e-mail but the same employee id.
    pid = people_svc.add_person(ctx, org, HR, {"email": "typed.by.hand@old-domain.example",
                                               "employee_id": u["employeeId"], "display_name": "By Hand"})  # fmt: skip
    connect(env, emulator)
    cli(env, "settings", "set", "--link-by", "employee_id", "--mode", "manual", "--guard-percent", "100")
    cli(env, "refresh")
    plan = cli(env, "plan", "show", "--per-page", "500")
    link = next(c for c in plan["changes"] if c["person_id"] == pid)
    assert link["reason"] == "first_link" and link["entra_id"] == u["id"]
    assert not any(c["kind"] == "create" and c["entra_id"] == u["id"] for c in plan["changes"])
    cli(env, "plan", "apply")
    p = {x["id"]: x for x in people(env)}[pid]
    assert p["entra_id"] == u["id"] and p["email"] == u["mail"] and p["source"] == "entra"


def test_explain_finds_the_person_a_first_link_by_employee_id_would_take(
    env: dict[str, str], emulator: Any, admin: Any
) -> None:
    """Explain reads the people holding the user's employee id, not only its e-mail: otherwise it
    predicted a create for a user the refresh then links to a person typed by hand."""
    ctx = _ctx(env)
    org = ctx.org_id()
    connect(env, emulator)
    cli(env, "settings", "set", "--link-by", "employee_id", "--mode", "manual", "--guard-percent", "100")
    domain = next(u for u in _enabled(admin) if u.get("mail"))["mail"].split("@")[1]
    new = admin.create_user(displayName="Emp Linked", userPrincipalName=f"emp.linked@{domain}",
                            mail=f"emp.linked@{domain}", employeeId="E-77881")  # fmt: skip
    pid = people_svc.add_person(ctx, org, HR, {"email": "emp.typed@old-domain.example", "employee_id": "E-77881",
                                               "display_name": "Typed By Hand"})  # fmt: skip
    out = cli(env, "people", "explain", new["id"])
    assert out["person"] is not None and out["person"]["id"] == pid, out
    change = out["next_refresh"]["change"]
    assert change["person_id"] == pid and change["reason"] == "first_link", change
    assert out["match"]["kind"] == "first_link" and "by employee id (E-77881)" in out["match"]["summary"]
    cli(env, "refresh")
    link = next(c for c in cli(env, "plan", "show", "--per-page", "500")["changes"] if c["entra_id"] == new["id"])
    assert (link["person_id"], link["reason"]) == (pid, "first_link"), "explain said what the refresh does"


def test_duplicate_employee_ids_fall_back_to_the_email(env: dict[str, str], emulator: Any, admin: Any) -> None:
    ctx = _ctx(env)
    org = ctx.org_id()
    u = next(u for u in _enabled(admin) if u.get("employeeId") and u.get("mail"))
    a = people_svc.add_person(ctx, org, HR, {"email": u["mail"], "employee_id": "DUP-1"})
    people_svc.add_person(ctx, org, HR, {"email": "two@elsewhere.example", "employee_id": u["employeeId"]})
    people_svc.add_person(ctx, org, HR, {"email": "three@elsewhere.example", "employee_id": u["employeeId"]})
    connect(env, emulator)
    cli(env, "settings", "set", "--link-by", "employee_id", "--guard-percent", "100")
    cli(env, "refresh")
    assert {x["id"]: x for x in people(env)}[a]["entra_id"] == u["id"], "linked by e-mail"


def test_unknown_source_property_is_refused_with_graphs_reason(env: dict[str, str], emulator: Any) -> None:
    connect(env, emulator)
    before = cli(env, "settings", "show")
    result = cli(env, "settings", "map", "custom", "--source", "favouriteColour", "--label", "Colour", ok=False)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "favouriteColour" in lines[0] and "Could not find a property named" in lines[0], lines[0]
    bad = cli(env, "settings", "map", "custom", "--source", "extension_0123456789abcdef0123456789abcdef_nope",
              "--label", "X", ok=False)  # fmt: skip
    assert bad.exit_code == 1 and "extension_0123456789abcdef0123456789abcdef_nope" in bad.stderr
    syntax = cli(env, "settings", "map", "custom", "--source", "not a property", "--label", "X", ok=False)
    assert syntax.exit_code == 1 and "not a Graph user property" in syntax.stderr
    assert cli(env, "settings", "show") == before, "nothing saved"


def test_mapping_with_the_safety_guard(env: dict[str, str], emulator: Any) -> None:
    """A mapping change is planned like any other: here it updates everyone, and nobody is archived."""
    connect(env, emulator)
    cli(env, "refresh")
    cli(env, "settings", "set", "--mode", "manual")
    cli(env, "settings", "map", "office_location", "--source", "city")
    cli(env, "refresh")
    plan = cli(env, "plan", "show", "--per-page", "500")
    assert plan["counts"]["update"] > 0 and plan["counts"]["archive"] == 0
    diffs = [d for c in plan["changes"] for d in c["diffs"] if d["field"] == "office_location"]
    assert diffs
