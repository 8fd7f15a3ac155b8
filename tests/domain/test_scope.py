"""Scope rules (spec §3): enabled AND e-mail filter AND group filter, for each filter that is on."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from entrasync.domain.model import EntraUser, ScopeSettings
from entrasync.domain.scope import email_matches, in_scope, normalise_email_terms, scope_predicate


def test_normalise_splits_trims_lowercases_and_dedupes_keeping_order() -> None:
    assert normalise_email_terms(" Sales@, ,contoso.COM,sales@ ,,  x ") == ("sales@", "contoso.com", "x")


def test_normalise_accepts_an_iterable_whose_items_may_hold_commas() -> None:
    assert normalise_email_terms(["A, b", "B", " ", "c"]) == ("a", "b", "c")
    assert normalise_email_terms([]) == ()
    assert normalise_email_terms("") == ()


def test_email_matches_is_case_insensitive_substring() -> None:
    assert email_matches("Ann.Lee@Contoso.com", ["contoso.COM"], [])
    assert not email_matches("ann@fabrikam.com", ["contoso"], [])


def test_empty_include_includes_all() -> None:
    assert email_matches("anyone@anywhere.example", [], [])
    assert not email_matches("anyone@anywhere.example", [], ["ANYWHERE"])


def test_exclude_wins_over_include() -> None:
    assert not email_matches("temp.ann@contoso.com", ["contoso"], ["temp."])
    assert email_matches("ann@contoso.com", ["contoso"], ["temp."])


def test_email_matches_ignores_blank_terms() -> None:
    # A blank exclude term would otherwise exclude everybody ("" is in every string).
    assert email_matches("ann@contoso.com", [" "], ["", "  "])


def _user(**kw: object) -> EntraUser:
    base: dict[str, object] = {"id": "u1", "user_principal_name": "ann@contoso.onmicrosoft.com"}
    base.update(kw)
    return EntraUser.of(**base)  # type: ignore[arg-type]


def test_disabled_user_is_never_in_scope() -> None:
    assert in_scope(_user(), ScopeSettings(), None)
    assert not in_scope(_user(account_enabled=False), ScopeSettings(), None)


def test_email_filter_uses_mail_else_upn() -> None:
    settings = ScopeSettings(email_filter=True, email_include=("contoso.com",))
    assert in_scope(_user(mail="ann@contoso.com"), settings, None)
    assert not in_scope(_user(mail="ann@fabrikam.com"), settings, None)  # mail wins over the UPN
    assert not in_scope(_user(), settings, None)  # UPN is @contoso.onmicrosoft.com
    assert in_scope(_user(user_principal_name="ann@contoso.com"), settings, None)


def test_email_filter_off_ignores_the_lists() -> None:
    settings = ScopeSettings(email_filter=False, email_include=("nomatch",), email_exclude=("ann",))
    assert in_scope(_user(), settings, None)


def test_group_filter_needs_membership() -> None:
    settings = ScopeSettings(group_filter=True)
    assert in_scope(_user(), settings, frozenset({"u1", "u2"}))
    assert not in_scope(_user(), settings, frozenset({"u2"}))
    assert not in_scope(_user(), settings, frozenset())
    assert not in_scope(_user(), settings, None)  # membership unknown: nobody, never everybody
    assert in_scope(_user(), ScopeSettings(group_filter=False), frozenset())


def test_all_filters_must_match() -> None:
    settings = ScopeSettings(email_filter=True, email_include=("ann",), group_filter=True)
    assert in_scope(_user(), settings, frozenset({"u1"}))
    assert not in_scope(_user(account_enabled=False), settings, frozenset({"u1"}))
    assert not in_scope(_user(id="u9"), settings, frozenset({"u1"}))
    assert not in_scope(_user(user_principal_name="bob@contoso.com"), settings, frozenset({"u1"}))


_terms = st.lists(st.sampled_from(["a", "B", "co", "@x", "ann", "Z"]), max_size=3)


@given(email=st.sampled_from(["ann@x.co", "ANN@X.CO", "bob@y.com", "zed@co.uk"]), inc=_terms, exc=_terms)
def test_email_matches_agrees_with_its_definition(email: str, inc: list[str], exc: list[str]) -> None:
    key = email.lower()
    expected = not any(t.lower() in key for t in exc) and (not inc or any(t.lower() in key for t in inc))
    assert email_matches(email, inc, exc) is expected
    settings = ScopeSettings(email_filter=True, email_include=tuple(inc), email_exclude=tuple(exc))
    assert scope_predicate(settings, None)(_user(mail=email)) is expected
