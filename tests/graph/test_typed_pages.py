"""adapters.graph.typed_pages: a users page decoded straight into checked rows gives the very users the
dict path gives, and any page it cannot check whole (a NUL, a value too long or not a string, a
property the rows cannot hold) is parsed and mapped user by user as before."""

from __future__ import annotations

from typing import Any

import orjson
from graph_fakes import FakeGraph, guid, make_client
from hypothesis import given, settings
from hypothesis import strategies as st

from entrasync.adapters.graph import mapping as gm
from entrasync.adapters.graph.reader import fetch_snapshot
from entrasync.domain import fields, mapping

MAPPED = {
    "custom_1": {"source": "onPremisesExtensionAttributes.extensionAttribute1", "label": "Cost centre"},
    "custom_2": {"source": "onPremisesExtensionAttributes.extensionAttribute2", "label": "Grade"},
    "office_location": {"source": "city", "default": "Remote"},
    "employee_id": {"source": "extension_0123456789abcdef0123456789abcdef_payroll"},
}

_TEXT = st.one_of(
    st.none(),
    st.text(max_size=4),
    st.text(alphabet=st.sampled_from("ab\x00é€"), min_size=0, max_size=330),  # NULs; too long for most limits
)
_VALUE = st.one_of(
    _TEXT,
    st.integers(min_value=-(2**40), max_value=2**40),
    st.booleans(),
    st.lists(st.one_of(st.none(), st.text(max_size=70)), max_size=3),
    st.dictionaries(st.sampled_from(["extensionAttribute1", "extensionAttribute2", "x"]), _TEXT, max_size=3),
)
_PROPS = ("mail", "userPrincipalName", "displayName", "givenName", "surname", "jobTitle", "employeeId",
          "officeLocation", "department", "employeeHireDate", "employeeType", "companyName", "city", "country",
          "mobilePhone", "businessPhones", "preferredLanguage", "onPremisesExtensionAttributes", "accountEnabled",
          "userType", "manager", "extension_0123456789abcdef0123456789abcdef_payroll")  # fmt: skip
_TYPES = ["#microsoft.graph.user", "#microsoft.graph.orgContact"]
_MANAGER = st.one_of(
    st.none(),
    st.fixed_dictionaries({"@odata.type": st.sampled_from(_TYPES), "id": st.text(max_size=5)}),
    st.fixed_dictionaries({"id": st.text(max_size=5)}),
)
_USER = st.dictionaries(st.sampled_from(_PROPS), _VALUE).flatmap(
    lambda d: st.fixed_dictionaries({"manager": _MANAGER}).map(lambda m: {**d, **m}) if "manager" in d else st.just(d)
)


def _by_dicts(m: gm.UserMapper, body: bytes) -> list[Any]:
    return [m.user_from_graph(d) for d in orjson.loads(body)["value"]]


@settings(max_examples=400, deadline=None)
@given(st.lists(_USER, min_size=1, max_size=4), st.booleans(), st.booleans())
def test_a_page_decoded_into_rows_gives_the_users_the_dicts_give(
    docs: list[dict[str, Any]], mapped: bool, more: bool
) -> None:
    m = gm.mapper_for(mapping.effective(MAPPED if mapped else {}))
    assert m.page_decoder is not None
    value = [{"id": f"u{i}", **d} for i, d in enumerate(docs)]
    page: dict[str, Any] = {"@odata.context": "x", "value": value}
    if more:
        page["@odata.nextLink"] = "https://graph.test/v1.0/users?$skiptoken=1"
    body = orjson.dumps(page)
    decoded = m.page_decoder(body)
    if decoded is None:  # something on the page needs the field-by-field path: the caller parses it with orjson
        return
    assert decoded.get("@odata.nextLink") == page.get("@odata.nextLink")
    assert [m.user_from_row(r) for r in decoded["value"]] == _by_dicts(m, body)


def _clean(i: int) -> dict[str, Any]:
    return {
        "id": guid(i), "mail": f"p{i}@contoso.test", "userPrincipalName": f"p{i}@contoso.test", "displayName": f"P {i}",
        "department": "R&D", "employeeHireDate": "2021-03-15T00:00:00Z", "businessPhones": ["+44 1"], "city": "Oslo",
        "accountEnabled": True, "userType": "Member", "onPremisesExtensionAttributes": {"extensionAttribute1": "CC"},
        "manager": {"@odata.type": "#microsoft.graph.user", "id": guid(0)},
    }  # fmt: skip


def test_a_clean_page_is_decoded_into_rows_for_the_default_and_a_custom_mapping() -> None:
    body = orjson.dumps({"value": [_clean(i) for i in range(1, 4)], "@odata.nextLink": "https://graph.test/next"})
    for stored in ({}, MAPPED):
        m = gm.mapper_for(mapping.effective(stored))
        assert m.page_decoder is not None
        decoded = m.page_decoder(body)
        assert decoded is not None and decoded["@odata.nextLink"] == "https://graph.test/next"
        rows = decoded["value"]
        assert rows and all(type(r) is not dict for r in rows)  # rows, not orjson's dicts
        users = [m.user_from_row(r) for r in rows]
        assert users == _by_dicts(m, body)
        assert users[0].get("departments") == ("R&D",) and users[0].get("start_date") == "2021-03-15"
        assert users[0].manager_id == guid(0)
    custom = gm.mapper_for(mapping.effective(MAPPED))
    rows = custom.page_decoder(body)["value"]  # type: ignore[index, misc]
    assert custom.user_from_row(rows[0]).get("custom_1") == "CC"
    assert custom.user_from_row(rows[0]).get("office_location") == "Oslo"


def test_a_page_with_a_nul_a_long_value_or_a_number_is_left_to_the_dict_path() -> None:
    m = gm.DEFAULT_MAPPER
    assert m.page_decoder is not None
    limit = fields.BY_NAME["display_name"].limit
    for odd in ({"displayName": "a\x00b"}, {"displayName": "x" * (limit + 1)}, {"city": 7}, {"id": ""}):
        body = orjson.dumps({"value": [_clean(1), {**_clean(2), **odd}]})
        assert m.page_decoder(body) is None, odd
    assert m.page_decoder(b'{"value": [') is None  # not JSON: orjson's path says what is wrong (a retry)


def test_a_mapping_the_rows_cannot_hold_reads_dicts() -> None:
    """A complex property read both whole and by one of its attributes has no typed rows."""
    stored = {
        "custom_1": {"source": "onPremisesExtensionAttributes", "label": "All"},
        "custom_2": {"source": "onPremisesExtensionAttributes.extensionAttribute1", "label": "Cost centre"},
    }
    m = gm.mapper_for(mapping.effective(stored))
    assert m.page_decoder is None
    u = m.user_from_graph({"id": "u1", "onPremisesExtensionAttributes": {"extensionAttribute1": "CC"}})
    assert u.get("custom_2") == "CC" and u.get("custom_1") is None


def test_a_full_read_maps_every_page_whichever_path_it_takes() -> None:
    """Through the client: clean pages as rows, one page with a NUL and one too-long name through the
    dict path (fitted there), the same snapshot as the dict path alone gives."""
    users = [{**_clean(i), "manager": guid(1) if i > 1 else None} for i in range(1, 8)]  # FakeGraph: manager ids
    users[4]["displayName"] = "Ni\x00na"
    users[5]["jobTitle"] = "t" * 400
    graph = FakeGraph(users=users, page_size=2)
    h = make_client(graph)
    snap = fetch_snapshot(h.client, graph_filter=None, group_ids=None, cursor=None).snapshot
    assert snap.users[guid(5)].get("display_name") == "Nina" and snap.users[guid(5)].manager_id == guid(1)
    assert snap.users[guid(6)].get("job_title") == "t" * fields.BY_NAME["job_title"].limit
    decoder, gm.DEFAULT_MAPPER.page_decoder = gm.DEFAULT_MAPPER.page_decoder, None
    try:
        by_dicts = fetch_snapshot(make_client(graph).client, graph_filter=None, group_ids=None, cursor=None)
    finally:
        gm.DEFAULT_MAPPER.page_decoder = decoder
    assert dict(snap.users) == dict(by_dicts.snapshot.users) and len(snap.users) == 7
