"""domain.explain: the e-mail filter's verdict (the scope rules' own) and the outcome of one person,
taken from the planner run on just the people concerned."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from entrasync.domain.explain import email_verdict, outcome
from entrasync.domain.model import EntraSnapshot, EntraUser, PersonRecord, ScopeSettings
from entrasync.domain.overrides import Override, value_key
from entrasync.domain.scope import email_matches

TERMS = st.lists(st.sampled_from(["@contoso.com", "ADMIN", "test", "x", ""]), max_size=3)


@given(email=st.sampled_from(["ann@contoso.com", "admin.test@fabrikam.com", "x@y.z"]), inc=TERMS, exc=TERMS)
def test_the_verdict_agrees_with_the_scope_rule(email: str, inc: list[str], exc: list[str]) -> None:
    on = ScopeSettings(email_filter=True, email_include=tuple(inc), email_exclude=tuple(exc))
    v = email_verdict(email, on)
    assert v.passed == email_matches(email, inc, exc)
    assert (v.excluded_by is not None) == (not v.passed and any(t.strip() and t.casefold() in email for t in exc))
    assert email_verdict(email, ScopeSettings()).reason == "off"


def test_exclude_wins_and_is_named() -> None:
    s = ScopeSettings(email_filter=True, email_include=("@contoso.com",), email_exclude=("Admin",))
    assert email_verdict("admin@contoso.com", s).excluded_by == "admin"
    assert email_verdict("ann@contoso.com", s).included_by == "@contoso.com"
    assert "none of the include rules" in email_verdict("ann@fabrikam.com", s).reason


def test_outcome_keeps_this_persons_change_and_overridden_part() -> None:
    ann = EntraUser.of("e1", "ann@contoso.com", "ann@contoso.com", job_title="New", display_name="Ann B")
    bob = EntraUser.of("e2", "bob@contoso.com", "bob@contoso.com", job_title="Boss")
    people = [
        PersonRecord.of(1, "ann@contoso.com", entra_id="e1", job_title="Old", display_name="Ann",
                        user_principal_name="ann@contoso.com", manual_fields=frozenset({"display_name"})),
        PersonRecord.of(2, "bob@contoso.com", entra_id="e2", job_title="Other", user_principal_name="bob@contoso.com"),
    ]  # fmt: skip
    snap = EntraSnapshot(users={"e1": ann, "e2": bob})
    rejected = [Override("p:1", "job_title", value_key("New"))]
    out = outcome(snap, people, ScopeSettings(), rejected, user_id="e1", person_id=1)
    assert [c.subject for c in out.changes] == ["p:1"] and [d.field for d in out.changes[0].diffs] == ["display_name"]
    assert out.changes[0].diffs[0].manual_edit is True
    assert [d.field for c in out.overridden for d in c.diffs] == ["job_title"]
    assert not out.conflicts and not out.matched
