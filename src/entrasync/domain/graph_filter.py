"""Does a user ``$filter`` need Graph's *advanced query* parameters? (pure, no I/O)

Advanced queries need the ``ConsistencyLevel: eventual`` header and ``$count=true``; without them Graph
answers 400 ``Request_UnsupportedQuery``. Source: https://learn.microsoft.com/graph/aad-advanced-queries
("Query scenarios that require advanced query capabilities" and the per-property table for users,
``includes/filter-directory-objects.md`` in microsoftgraph/microsoft-graph-docs-contrib):

- ``ne`` and ``not`` are advanced-only, for every property;
- ``endsWith`` is advanced-only (and only on mail, otherMails, userPrincipalName, proxyAddresses);
- ``/$count`` inside a filter, and ``$search``, are advanced-only;
- some properties need advanced parameters even for ``eq``/``in``/``startsWith``
  (companyName, employeeType, officeLocation, mobilePhone, ...), and ``eq null`` on most properties.

When unsure we answer *True*: "queries that are supported by default will also work with advanced query
parameters" (same page), so a false positive only costs eventual consistency, while a false negative
makes Graph refuse the query. For that reason the range operators (``ge``/``gt``/``le``/``lt``), which
the docs mark inconsistently across properties, unknown properties, and functions Graph does not
support on directory objects (``contains``) are all treated as advanced.
"""

from __future__ import annotations

import re

# Per-property support on users, from the docs table. D = works by default. A property/operator not
# listed (blank cell: "not valid", or an unlisted property) is treated as advanced.
# Columns: eq, in, startsWith, null (= "eq null"). ne/not are always advanced.
_USER_DEFAULT_OPS: dict[str, frozenset[str]] = {
    name.lower(): frozenset(ops)
    for name, ops in {
        "accountEnabled": {"eq", "in"},
        "ageGroup": {"eq", "in"},
        "assignedLicenses": {"eq"},
        "assignedPlans": {"eq"},
        "businessPhones": {"eq"},
        "city": {"eq", "in", "startsWith"},
        "companyName": set(),
        "consentProvidedForMinor": {"eq", "in"},
        "country": {"eq", "in", "startsWith"},
        "createdDateTime": {"eq"},
        "creationType": {"eq", "in"},
        "deletedDateTime": {"eq"},
        "department": {"eq", "in", "startsWith"},
        "displayName": {"eq", "in", "startsWith"},
        "employeeHireDate": set(),
        "employeeId": {"eq", "startsWith"},
        "employeeType": set(),
        "givenName": {"eq", "in", "startsWith"},
        "id": {"eq"},
        "identities": {"eq"},
        "imAddresses": {"eq", "startsWith"},
        "isResourceAccount": {"eq"},
        "jobTitle": {"eq", "in"},
        "mail": {"eq", "in", "startsWith"},
        "mailNickname": {"eq", "in", "startsWith"},
        "mobilePhone": set(),
        "officeLocation": set(),
        "onPremisesExtensionAttributes": set(),
        "onPremisesImmutableId": set(),
        "onPremisesLastSyncDateTime": set(),
        "onPremisesSamAccountName": set(),
        "onPremisesSecurityIdentifier": {"eq", "in"},
        "onPremisesSyncEnabled": {"eq", "in"},
        "onPremisesUserPrincipalName": {"eq", "in", "startsWith"},
        "otherMails": {"eq", "in", "startsWith"},
        "passwordPolicies": set(),
        "postalCode": set(),
        "preferredLanguage": set(),
        "proxyAddresses": {"eq", "startsWith"},
        "showInAddressList": set(),
        "signInActivity": {"eq"},
        "state": {"eq", "in", "startsWith"},
        "streetAddress": set(),
        "surname": {"eq", "in", "startsWith"},
        "usageLocation": {"eq", "in", "startsWith"},
        "userPrincipalName": {"eq", "in", "startsWith"},
        "userType": {"eq", "in"},
    }.items()
}

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^']|'')*'?)            # string literal, '' escapes a quote (unterminated tolerated)
      | (?P<punct>[(),:])
      | (?P<word>[A-Za-z_$][\w$./]*)        # identifiers, property paths, operators, keywords
      | (?P<other>[^\s(),:']+)              # numbers, GUIDs, dates
    )""",
    re.VERBOSE,
)
_COMPARISONS = frozenset({"eq", "ne", "gt", "ge", "lt", "le", "in", "has"})
_RANGE = frozenset({"gt", "ge", "lt", "le"})


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            if text[pos:].strip() == "":
                break
            out.append(("other", text[pos]))
            pos += 1
            continue
        kind = m.lastgroup or "other"
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def needs_advanced_query(graph_filter: str) -> bool:
    """True when ``graph_filter`` (an OData ``$filter`` on users) must be sent as an advanced query.

    Operators inside string literals (``'it''s ne'``) are data, not syntax, and are ignored.
    """
    toks = _tokens(graph_filter)
    lambda_vars: dict[str, str] = {}  # lambda variable -> collection property it ranges over

    def prop_of(name: str) -> str:
        head = name.partition("/")[0]
        if head.lower() in lambda_vars:
            return lambda_vars[head.lower()]
        return head.lower()

    def default_ok(prop: str, op: str) -> bool:
        return op in _USER_DEFAULT_OPS.get(prop, frozenset())

    for i, (kind, text) in enumerate(toks):
        if kind != "word":
            continue
        low = text.lower()
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        prev = toks[i - 1] if i > 0 else None
        if "$count" in low or "$search" in low:
            return True
        if low in ("not", "ne"):
            return True
        # Lambda: prop/any(x: ...) or prop/all(x: ...).
        if low.endswith(("/any", "/all")) and nxt == ("punct", "("):
            if low.endswith("/all"):
                return True
            collection = prop_of(text[: -len("/any")])
            if i + 3 < len(toks) and toks[i + 2][0] == "word" and toks[i + 3] == ("punct", ":"):
                lambda_vars[toks[i + 2][1].lower()] = collection
            continue
        # Functions: startsWith(prop, 'x'), endsWith(prop, 'x'), anything else.
        if nxt == ("punct", "(") and low not in _COMPARISONS:
            if low in ("and", "or"):
                continue
            if low != "startswith":
                return True  # endsWith is advanced-only; other functions are not default either
            arg = toks[i + 2] if i + 2 < len(toks) else None
            if arg is None or arg[0] != "word" or not default_ok(prop_of(arg[1]), "startsWith"):
                return True
            continue
        # Comparisons: prop op value.
        if low in _COMPARISONS and prev is not None and prev[0] == "word":
            if low in _RANGE or low == "has":
                return True
            prop = prop_of(prev[1])
            value = nxt[1].lower() if nxt is not None else ""
            column = "null" if nxt is not None and nxt[0] == "word" and value == "null" else low
            if not default_ok(prop, column):
                return True
    return False


__all__ = ["needs_advanced_query"]
