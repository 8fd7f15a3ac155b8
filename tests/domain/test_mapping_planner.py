"""Issue 16 on plain data: the planner's create-only fields, people added by hand kept, the first link by
employee id, and the mapping's validation (domain.mapping) and its reader (adapters.graph.mapping)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrasync.adapters.graph.mapping import mapper_for, user_from_graph
from entrasync.domain import fields, mapping
from entrasync.domain.model import ChangeKind, EntraSnapshot, EntraUser, PersonRecord, Reason, ScopeSettings, Source
from entrasync.domain.planner import KEPT_MANUAL_REASON, plan


def user(uid: str, **kw: Any) -> EntraUser:
    kw.setdefault("mail", f"{uid}@contoso.com")
    kw.setdefault("user_principal_name", f"{uid}@contoso.onmicrosoft.com")
    kw.setdefault("display_name", uid.upper())
    return EntraUser.of(uid, **kw)


def synced(u: EntraUser, pid: int, **kw: Any) -> PersonRecord:
    """The person a previous sync wrote for ``u``: the same values."""
    p = PersonRecord(pid, u.values, u.id)
    return p.with_(**kw) if kw else p


def snap(*users: EntraUser) -> EntraSnapshot:
    return EntraSnapshot(users={u.id: u for u in users})


# -- create-only -------------------------------------------------------------------------------------


def test_a_create_only_field_is_written_on_create_and_kept_after() -> None:
    s = ScopeSettings(create_only=frozenset({"job_title"}))
    joiner = user("a", job_title="Engineer")
    first = plan(snap(joiner), [], s)
    assert first.changes[0].kind is ChangeKind.CREATE and first.changes[0].target is not None
    assert first.changes[0].target.get("job_title") == "Engineer"

    person = synced(joiner, 1)
    edited = joiner.with_(job_title="Chief Engineer")
    assert plan(snap(edited), [person], s).changes == [], "the person keeps their value"
    both = plan(snap(edited.with_(display_name="Renamed")), [person], s)
    (change,) = both.changes
    assert [d.field for d in change.diffs] == ["display_name"]
    assert change.target is not None and change.target.get("job_title") == "Engineer", "the person's own value"
    # Without the setting, the same edit is an update.
    assert [d.field for d in plan(snap(edited), [person], ScopeSettings()).changes[0].diffs] == ["job_title"]


def test_a_create_only_field_on_a_restore_keeps_the_persons_value() -> None:
    from entrasync.domain.model import Status

    u = user("a", job_title="Old")
    person = synced(u, 1, status=Status.ARCHIVED)
    p = plan(snap(u.with_(job_title="New")), [person], ScopeSettings(create_only=frozenset({"job_title"})))
    (change,) = p.changes
    assert change.kind is ChangeKind.RESTORE and "job_title" not in [d.field for d in change.diffs]


# -- people added by hand ----------------------------------------------------------------------------


def test_manual_people_with_no_entra_match_are_kept_when_the_setting_says_keep() -> None:
    hand = PersonRecord.of(5, "contractor@elsewhere.example", source=Source.MANUAL)
    u = user("a")
    archived = plan(snap(u), [synced(u, 1), hand], ScopeSettings())
    assert [(c.kind, c.reason) for c in archived.changes] == [(ChangeKind.ARCHIVE, Reason.NOT_IN_ENTRA)]
    kept = plan(snap(u), [synced(u, 1), hand], ScopeSettings(keep_manual=True))
    assert kept.changes == [] and [(k.person_id, k.reason) for k in kept.kept] == [(5, KEPT_MANUAL_REASON)]


def test_keep_does_not_keep_manual_people_matching_a_disabled_user() -> None:
    u = user("a", account_enabled=False)
    hand = PersonRecord.of(5, u.email, source=Source.MANUAL)
    p = plan(snap(u), [hand], ScopeSettings(keep_manual=True))
    assert [(c.kind, c.reason) for c in p.changes] == [(ChangeKind.ARCHIVE, Reason.DISABLED)]


def test_keep_does_not_keep_synced_people_whose_user_is_gone() -> None:
    u = user("a")
    p = plan(snap(), [synced(u, 1)], ScopeSettings(keep_manual=True))
    assert [(c.kind, c.reason) for c in p.changes] == [(ChangeKind.ARCHIVE, Reason.HARD_DELETED)]


# -- first link by employee id -----------------------------------------------------------------------


def test_first_link_by_employee_id() -> None:
    u = user("a", employee_id="E1")
    hand = PersonRecord.of(5, "old.address@elsewhere.example", source=Source.MANUAL, employee_id="E1")
    by_email = plan(snap(u), [hand], ScopeSettings())
    assert sorted(c.kind for c in by_email.changes) == [ChangeKind.ARCHIVE, ChangeKind.CREATE]
    by_id = plan(snap(u), [hand], ScopeSettings(link_by="employee_id"))
    (change,) = by_id.changes
    assert change.reason is Reason.FIRST_LINK and change.person_id == 5 and change.entra_id == "a"
    assert ("email", "old.address@elsewhere.example", "a@contoso.com") in {
        (d.field, d.old, d.new) for d in change.diffs
    }


def test_duplicate_employee_ids_fall_back_to_the_email() -> None:
    a, b = user("a", employee_id="E1"), user("b", employee_id="E1")
    pa = PersonRecord.of(5, a.email, source=Source.MANUAL, employee_id="X")
    p = plan(snap(a, b), [pa], ScopeSettings(link_by="employee_id"))
    link = next(c for c in p.changes if c.person_id == 5)
    assert link.reason is Reason.FIRST_LINK and link.entra_id == "a"  # by e-mail: E1 is claimed twice
    twice = [PersonRecord.of(5, "x@e.example", employee_id="E2"), PersonRecord.of(6, "y@e.example", employee_id="E2")]
    c = user("c", employee_id="E2")
    q = plan(snap(c), twice, ScopeSettings(link_by="employee_id"))
    assert any(ch.kind is ChangeKind.CREATE for ch in q.changes), "two people hold E2: no link by it"


def test_employee_id_link_never_takes_a_person_linked_to_a_live_user() -> None:
    a = user("a", employee_id="E1")
    b = user("b", employee_id="E1x")
    pb = synced(b, 6).with_(employee_id="E1")  # linked to b, and by hand given a's employee id
    p = plan(snap(a, b), [pb], ScopeSettings(link_by="employee_id"))
    assert any(c.kind is ChangeKind.CREATE and c.entra_id == "a" for c in p.changes)


def test_the_result_does_not_depend_on_the_order() -> None:
    users = [user(f"u{i}", employee_id=f"E{i % 3}") for i in range(6)]
    people = [PersonRecord.of(10 + i, f"p{i}@x.example", employee_id=f"E{i}") for i in range(4)]
    s = ScopeSettings(link_by="employee_id", keep_manual=True, create_only=frozenset({"job_title"}))
    one = plan(snap(*users), people, s)
    two = plan(snap(*reversed(users)), list(reversed(people)), s)
    assert one == two


# -- the mapping -------------------------------------------------------------------------------------


def test_mapping_entries_are_validated_with_one_line_errors() -> None:
    ok = mapping.entry("custom_1", {"source": "onPremisesExtensionAttributes/extensionAttribute7", "label": "Site"})
    assert ok.source == "onPremisesExtensionAttributes.extensionAttribute7" and ok.top == mapping.ON_PREM
    assert ok.nested == "extensionAttribute7"
    ext = mapping.entry("custom_2", {"source": "extension_0123456789abcdef0123456789abcdef_costCenter", "label": "C"})
    assert ext.top == ext.source
    for name, raw, words in [
        ("nope", {"source": "city"}, "No directory field"),
        ("custom_1", {"source": "city"}, "label"),
        ("custom_1", {"label": "X"}, "source property"),
        ("custom_1", {"source": "a b", "label": "X"}, "not a Graph user property"),
        ("custom_1", {"source": "onPremisesExtensionAttributes.extensionAttribute16", "label": "X"}, "not a Graph"),
        ("city", {"source": "accountEnabled"}, "read by the sync itself"),
        ("user_principal_name", {"source": "mail"}, "always comes from"),
        ("email", {"source": "mail", "create_only": True}, "always written"),
        ("email", {"source": "mail", "default": "x@y"}, "cannot have a default"),
        ("start_date", {"source": "employeeHireDate", "default": "soon"}, "a date like"),
        ("city", {"source": "city", "default": "x" * 200}, "longer than"),
    ]:
        with pytest.raises(mapping.MappingError, match=words):
            mapping.entry(name, raw)


def test_the_default_mapping_selects_what_it_always_did() -> None:
    assert mapping.select(mapping.DEFAULTS) == fields.GRAPH_USER_SELECT
    assert mapping.difference({"city": mapping.DEFAULTS[fields.INDEX["city"]]}) == {}


def test_a_mapped_reader_reads_nested_extension_attributes_and_defaults() -> None:
    stored = {
        "custom_1": {"source": "onPremisesExtensionAttributes.extensionAttribute1", "label": "Cost centre"},
        "office_location": {"source": "city", "default": "Remote"},
        "employee_id": {"source": "extension_0123456789abcdef0123456789abcdef_payroll"},
    }
    m = mapper_for(mapping.effective(stored))
    assert "onPremisesExtensionAttributes" in m.select
    assert "extension_0123456789abcdef0123456789abcdef_payroll" in m.select
    d = {
        "id": "u1", "mail": "a@x", "userPrincipalName": "a@x", "city": None, "employeeId": "ignored",
        "onPremisesExtensionAttributes": {"extensionAttribute1": "CC-1"},
        "extension_0123456789abcdef0123456789abcdef_payroll": "P-7",
    }  # fmt: skip
    u = m.user_from_graph(d)
    assert u.get("custom_1") == "CC-1" and u.get("office_location") == "Remote" and u.get("employee_id") == "P-7"
    slow = m.user_from_graph({**d, "displayName": "x" * 300})  # too long: the slow path, same values otherwise
    assert slow.get("custom_1") == "CC-1" and slow.get("office_location") == "Remote"
    assert slow.get("display_name") == "x" * fields.BY_NAME["display_name"].limit
    # Delta: the whole complex property comes back when one attribute changes.
    moved = m.merge_delta_user(u, {"id": "u1", "onPremisesExtensionAttributes": {"extensionAttribute1": "CC-2"}})
    assert moved.get("custom_1") == "CC-2" and moved.get("employee_id") == "P-7"
    cleared = m.merge_delta_user(moved, {"id": "u1", "onPremisesExtensionAttributes": None, "city": "Oslo"})
    assert cleared.get("custom_1") is None and cleared.get("office_location") == "Oslo"


def test_more_of_entra_values_are_shaped_by_kind() -> None:
    u = user_from_graph({
        "id": "u1", "mail": "a@x", "userPrincipalName": "a@x", "employeeHireDate": "2021-03-15T00:00:00Z",
        "businessPhones": ["+44 20 7946 0000", "", None], "preferredLanguage": "en-GB", "city": 7,
    })  # fmt: skip
    assert u.get("start_date") == "2021-03-15"
    assert u.get("business_phones") == ("+44 20 7946 0000",)
    assert u.get("preferred_language") == "en-GB" and u.get("city") == "7"
    empty = user_from_graph({"id": "u2", "mail": "b@x", "userPrincipalName": "b@x", "employeeHireDate": "garbage"})
    assert empty.get("start_date") is None and empty.get("business_phones") == ()


# -- the reader's generated fast path ------------------------------------------------------------------

_GRAPH_VALUE = st.one_of(
    st.none(),
    st.text(max_size=3),
    st.text(alphabet=st.sampled_from("ab\x00é"), min_size=0, max_size=400),  # NULs, too long for every limit
    st.integers(),
    st.lists(st.one_of(st.none(), st.text(max_size=70)), max_size=3),
    st.just({"extensionAttribute1": "CC"}),
)
_PROPS = ("mail", "userPrincipalName", "displayName", "givenName", "surname", "jobTitle", "employeeId",
          "officeLocation", "department", "employeeHireDate", "employeeType", "companyName", "city", "country",
          "mobilePhone", "businessPhones", "preferredLanguage", "onPremisesExtensionAttributes")  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(_PROPS), _GRAPH_VALUE), st.booleans())
def test_the_fast_path_reads_what_the_field_by_field_path_reads(d: dict[str, Any], mapped: bool) -> None:
    """The generated per-user code (adapters.graph.mapping, the hot loop of a first sync) either hands a
    user to the slow path or gives exactly the values the field-by-field conversion gives."""
    from entrasync.adapters.graph import mapping as gm

    stored = {
        "custom_1": {"source": "onPremisesExtensionAttributes.extensionAttribute1", "label": "Cost centre"},
        "office_location": {"source": "city", "default": "Remote"},
    }
    m = mapper_for(mapping.effective(stored if mapped else {}))
    doc = {"id": "u1", **d}
    fast = m._fast(doc, None, gm._new_user, *gm._set, gm.manager_id_of)
    if fast is None:
        return
    assert fast.values == m.values(doc)
    assert fast.mail == gm._text(m._email_get(doc), fields.BY_NAME["email"].limit)


def test_users_read_from_different_pages_share_their_common_values() -> None:
    """domain.shared_values: two users parsed from separate JSON documents hold the very same objects
    for the values people share (a snapshot keeps one copy per distinct job title, city, …), and
    their own values (names) stay their own."""
    import orjson

    from entrasync.domain import shared_values

    assert set(fields.FIELD_NAMES) >= shared_values.SHARED_FIELDS
    raw = {"jobTitle": "Engineer", "city": "Oslo", "department": "R&D", "userType": "Member", "displayName": "Kim"}
    a = user_from_graph(orjson.loads(orjson.dumps({"id": "u1", "mail": "a@x", **raw})))
    b = user_from_graph(orjson.loads(orjson.dumps({"id": "u2", "mail": "b@x", **raw})))
    for name in ("job_title", "city", "departments"):
        assert a.get(name) == b.get(name) and a.get(name) is b.get(name)
    assert a.user_type is b.user_type == "Member"
    assert a.get("display_name") == b.get("display_name") and a.get("display_name") is not b.get("display_name")
    assert a.get("departments") == ("R&D",)
