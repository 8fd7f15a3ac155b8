"""Issue 10.2: values whose length comes from Entra never stop a refresh (run on SQLite and PostgreSQL).

Before: two Entra users with one ``mail`` made every refresh fail on PostgreSQL with
``StringDataRightTruncation: value too long for type character varying(64)`` (the conflict row joined
both ids into ``plan_changes.entra_id``), and a one-claimant conflict whose e-mail was longer than 78
characters overflowed ``plan_changes.subject varchar(80)``. SQLite does not enforce lengths, so only
the PostgreSQL pass of this file can fail the way production did.

Every column the plan, run, audit, override and notification rows take from Entra gets its maximal
value here: e-mails and user principal names of 320 characters, names and titles of 256, employee ids
of 64, and longer values that the directory cuts (README, "Values from Entra").
"""

from __future__ import annotations

from typing import Any

from e2e_helpers import by_entra, cli, connect, people

LONG = 320


def _address(stem: str, length: int = LONG) -> str:
    domain = "@contoso.example"
    return (stem + "x" * length)[: length - len(domain)] + domain


def _maximal(stem: str) -> dict[str, Any]:
    mail = _address(stem)
    return {
        "mail": mail,
        "userPrincipalName": _address("upn" + stem),
        "displayName": ("Dísplay " + stem + " ") * 60,  # longer than 256: cut
        "givenName": "G" * 200,  # longer than 128: cut
        "surname": "S" * 128,
        "jobTitle": "J" * 256,
        "employeeId": "E" * 100,  # longer than 64: cut
        "officeLocation": "O" * 300,
        "department": "D" * 256 + stem,
        "accountEnabled": True,
    }


def test_duplicate_and_long_emails_are_conflicts_and_the_rest_applies(
    env: dict[str, str], emulator: Any, admin: Any
) -> None:
    connect(env, emulator)
    first = cli(env, "refresh")
    assert first["outcome"] == "applied"

    # Two in-scope users claim one 320-character e-mail (a 73+ character id pair, a 322-character subject).
    shared = _maximal("shared")
    a = admin.create_user(**shared)
    b = admin.create_user(**{**shared, "userPrincipalName": _address("upn-other")})
    # One claimant of a long e-mail held by someone linked to another, still existing, account.
    holder = admin.create_user(**_maximal("holder"))
    cli(env, "refresh")
    admin.disable_user(holder["id"])
    claimant = admin.create_user(**{**_maximal("holder"), "userPrincipalName": _address("upn-claimant")})
    # And an ordinary joiner with maximal values, which must be created alongside.
    joiner = admin.create_user(**_maximal("joiner"))

    result = cli(env, "refresh")
    assert result["outcome"] == "applied", result
    assert result["counts"]["conflicts"] == 2, result
    linked = by_entra(people(env))
    assert a["id"] not in linked and b["id"] not in linked and claimant["id"] not in linked
    created = linked[joiner["id"]]
    assert created["email"] == joiner["mail"] and len(created["email"]) == LONG
    assert len(created["display_name"]) == 256 and len(created["given_name"]) == 128
    assert len(created["employee_id"]) == 64 and len(created["departments"][0]) == 256

    run = cli(env, "runs", "show", str(result["run_id"]))
    conflicts = [c for c in run["changes"] if c["kind"] == "conflict"]
    notes = " ".join(str(d) for c in conflicts for d in c["diffs"])
    assert a["id"] in notes and b["id"] in notes  # spec §4.3: the conflict names both ids
    assert {c["email"] for c in conflicts} == {shared["mail"], _maximal("holder")["mail"]}

    # The next refresh converges (the conflicts stay reported, nothing else to do).
    again = cli(env, "refresh")
    assert again["outcome"] in ("no_changes", "applied") and again["counts"]["conflicts"] == 2, again


def test_rejected_long_changes_become_overrides(env: dict[str, str], emulator: Any, admin: Any) -> None:
    connect(env, emulator)
    cli(env, "settings", "set", "--mode", "manual")
    joiner = admin.create_user(**_maximal("rejected"))
    result = cli(env, "refresh")
    assert result["outcome"] == "awaiting_review"
    plan = cli(env, "plan", "show", "--tab", "entra_only", "--per-page", "500")
    change = next(c for c in plan["changes"] if c["entra_id"] == joiner["id"])
    applied = cli(env, "plan", "apply", "--reject", str(change["id"]))
    assert applied["rejected"] == 1
    again = cli(env, "refresh")
    assert again["counts"]["overridden"] == 1, again


def test_more_of_entra_and_custom_fields_at_their_limits(env: dict[str, str], emulator: Any, admin: Any) -> None:
    """Issue 16: the new columns (and the custom slots, 1024) hold maximal values; longer ones are cut."""
    connect(env, emulator)
    cost = next(e["name"] for e in admin.extension_properties() if e["name"].endswith("_costCenter"))
    cli(env, "settings", "map", "custom_1", "--source", "onPremisesExtensionAttributes.extensionAttribute1",
        "--label", "Cost centre")  # fmt: skip
    cli(env, "settings", "map", "custom_20", "--source", cost, "--label", "C" * 64)
    joiner = admin.create_user(
        **_maximal("more"),
        employeeHireDate="2024-02-29T00:00:00Z",
        employeeType="T" * 100,
        companyName="C" * 64,
        city="Ç" * 200,
        country="N" * 128,
        mobilePhone="+" + "9" * 80,
        businessPhones=["+" + "1" * 100],
        preferredLanguage="l" * 40,
        onPremisesExtensionAttributes={"extensionAttribute1": "A" * 1024},
        **{cost: "Ž" * 1100},
    )
    result = cli(env, "refresh")
    assert result["outcome"] == "applied", result
    p = by_entra(people(env))[joiner["id"]]
    assert p["start_date"] == "2024-02-29"
    assert len(p["employee_type"]) == 64 and len(p["company_name"]) == 64
    assert p["city"] == "Ç" * 128 and len(p["country"]) == 128
    assert len(p["mobile_phone"]) == 64 and [len(x) for x in p["business_phones"]] == [64]
    assert len(p["preferred_language"]) == 16
    assert p["custom_1"] == "A" * 1024 and p["custom_20"] == "Ž" * 1024
    again = cli(env, "refresh")
    assert again["outcome"] == "no_changes", again
