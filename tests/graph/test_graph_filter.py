"""needs_advanced_query: which $filter expressions need ConsistencyLevel + $count (aad-advanced-queries)."""

from __future__ import annotations

import pytest

from entrasync.domain.graph_filter import needs_advanced_query


@pytest.mark.parametrize(
    "flt",
    [
        "department eq 'Sales'",
        "accountEnabled eq true",
        "accountEnabled eq false",
        "startsWith(displayName,'A')",
        "department in ('Sales','Marketing')",
        "employeeId eq 'E0001'",
        "startsWith(employeeId, 'E')",
        "userType eq 'Member' and department eq 'Sales'",
        "(department eq 'Sales' or department eq 'Marketing') and accountEnabled eq true",
        "mail eq 'a@contoso.com'",
        "proxyAddresses/any(p:startsWith(p,'smtp:ann'))",
        "assignedLicenses/any(x:x/skuId eq 6fd2c87f-b296-42f0-b197-1e91e994b900)",
        "DEPARTMENT EQ 'Sales'",
    ],
)
def test_default_queries(flt: str) -> None:
    assert needs_advanced_query(flt) is False


@pytest.mark.parametrize(
    "flt",
    [
        "accountEnabled ne true",
        "NOT(department eq 'Sales')",
        "not startsWith(displayName,'Conf')",
        "endsWith(mail,'@contoso.com')",
        "EndsWith(userPrincipalName,'#EXT#@contoso.onmicrosoft.com')",
        "assignedLicenses/$count eq 0",
        "proxyAddresses/any(p:endsWith(p,'OnMicrosoft.com'))",
        "department eq null",
        "employeeId eq null",
        "officeLocation eq 'Sydney 1'",
        "companyName eq 'Contoso'",
        "startsWith(companyName,'Con')",
        "employeeType eq 'Contractor'",
        "createdDateTime ge 2021-01-01T00:00:00Z",
        "department eq 'Sales' and jobTitle ne 'Boss'",
        "onPremisesExtensionAttributes/extensionAttribute1 eq 'x'",
        "contains(displayName,'a')",
        "someUnknownProperty eq 'x'",
    ],
)
def test_advanced_queries(flt: str) -> None:
    assert needs_advanced_query(flt) is True


@pytest.mark.parametrize(
    "flt",
    [
        "displayName eq 'it''s ne'",
        "displayName eq 'not endsWith(x) $count'",
        "jobTitle eq 'ne' or jobTitle eq 'NOT'",
        "startsWith(displayName,'endsWith(')",
    ],
)
def test_operators_inside_string_literals_are_data(flt: str) -> None:
    assert needs_advanced_query(flt) is False


def test_a_word_containing_not_is_not_the_operator() -> None:
    assert needs_advanced_query("department eq 'Notary'") is False
    assert needs_advanced_query("startsWith(displayName,'Nothing')") is False
