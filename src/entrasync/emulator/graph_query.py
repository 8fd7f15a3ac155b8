"""Query options of Graph requests on directory objects: ``$select``, ``$top``, ``$expand``,
``$orderby``, ``$search`` and the advanced-query rules, each answering Graph's own errors.

- paging and ``$top``: https://learn.microsoft.com/graph/paging
- ``$select`` and the default properties: https://learn.microsoft.com/graph/api/user-list#optional-query-parameters
- advanced queries: https://learn.microsoft.com/graph/aad-advanced-queries
- ``$search``: https://learn.microsoft.com/graph/search-query-parameter
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from entrasync.emulator.errors import GraphError
from entrasync.emulator.objects import DEFAULT_USER_SELECT, EXTENSION_PREFIX, ON_PREM, USER_PROPERTY_BY_LOWER, User
from entrasync.emulator.odata_filter import Filter, FilterError, parse_filter, user_filter_rules
from entrasync.emulator.store import Tenant
from entrasync.emulator.tenants import TenantState

USER_READ = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")
USER_WRITE = ("User.ReadWrite.All", "Directory.ReadWrite.All")
GROUP_READ = (
    "GroupMember.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
APPLICATION_READ = (
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Application.ReadWrite.OwnedBy",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
DEFAULT_TOP = 100
MAX_TOP = 999
ADVANCED_DOC = "Refer to https://aka.ms/graph-docs/advanced-queries for more information"
SEARCHABLE_USER = (
    "displayName",
    "givenName",
    "surname",
    "mail",
    "mailNickname",
    "userPrincipalName",
    "jobTitle",
    "department",
    "employeeId",
)
ORDERABLE_USER = (
    "displayName",
    "userPrincipalName",
    "givenName",
    "surname",
    "mail",
    "createdDateTime",
    "department",
    "jobTitle",
    "employeeId",
    "id",
)
_EXPAND = re.compile(r"^\s*manager\s*(?:\(\s*\$select\s*=\s*([^)]*)\))?\s*$", re.IGNORECASE)
_SEARCH_CLAUSE = re.compile(r'"([A-Za-z]+):([^"]*)"')


@dataclass
class Ctx:
    """The tenant a Graph request is served from (the token's ``tid``) and the token's claims."""

    ts: TenantState
    tenant: Tenant
    claims: dict[str, Any]


def type_name(kind: str) -> str:
    return f"#microsoft.graph.{kind}"


class Query:
    """Query options of a Graph request (names case-insensitive, ``$`` optional as Graph allows)."""

    def __init__(self, request: Request) -> None:
        self.params: dict[str, str] = {}
        for key, value in request.query_params.multi_items():
            k = key.lower()
            self.params[k if k.startswith("$") else "$" + k] = value
        self.eventual = request.headers.get("consistencylevel", "").strip().lower() == "eventual"
        self.minimal = "return=minimal" in request.headers.get("prefer", "").replace(" ", "").lower()

    @classmethod
    def of(cls, params: dict[str, str], like: Query) -> Query:
        """Stored query options (from a page token) with the headers of the current request."""
        q = cls.__new__(cls)
        q.params, q.eventual, q.minimal = dict(params), like.eventual, like.minimal
        return q

    def get(self, name: str) -> str | None:
        return self.params.get(name)


def check_roles(claims: dict[str, Any], allowed: Iterable[str]) -> None:
    granted = set(claims.get("roles") or ()) | set(str(claims.get("scp") or "").split())
    if not granted.intersection(allowed):
        raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def no_such_property(name: str, type_name: str) -> GraphError:
    return GraphError(
        400,
        "BadRequest",
        f"Parsing OData Select and Expand failed: Could not find a property named '{name}' on type "
        f"'microsoft.graph.{type_name}'.",
    )


def parse_select(
    raw: str | None, by_lower: dict[str, str], type_name: str, extra: tuple[str, ...] = ()
) -> list[str] | None:
    """Graph property names (``id`` first), or None when no $select was given (groups and others)."""
    if raw is None or not raw.strip():
        return None
    props: list[str] = ["id"]
    for part in raw.split(","):
        name = part.strip()
        prop = by_lower.get(name.lower())
        if prop is None and name.lower() in extra:
            props.append(name.lower())
            continue
        if prop is None:
            raise no_such_property(name, type_name)
        if prop not in props:
            props.append(prop)
    return props


def parse_user_select(raw: str | None, tenant: Tenant, extra: tuple[str, ...] = ()) -> list[str] | None:
    """``$select`` on users: the user type's properties and the tenant's registered directory
    extensions; anything else is refused. The 15 extension attributes are selectable only as the
    whole ``onPremisesExtensionAttributes`` ("the individual extension attributes are neither
    selectable nor filterable", user resource type), so a path into it is refused too."""
    if raw is None or not raw.strip():
        return None
    props: list[str] = ["id"]
    for part in raw.split(","):
        name = part.strip()
        low = name.lower()
        prop = USER_PROPERTY_BY_LOWER.get(low)
        if prop is None and low in extra:
            props.append(low)
            continue
        if prop is None and low.startswith(EXTENSION_PREFIX):
            prop = tenant.extension_name(name)
        if prop is None and "/" in name and low.split("/", 1)[0] == ON_PREM.lower():
            raise GraphError(
                400,
                "BadRequest",
                "Parsing OData Select and Expand failed: Found a path with multiple navigation properties or a "
                "bad complex property path in a select clause. Please reword your query such that each level of "
                "select or expand only contains either TypeSegments or Properties.",
            )
        if prop is None:
            raise no_such_property(name, "user")
        if prop not in props:
            props.append(prop)
    return props


def user_props(raw: str | None, tenant: Tenant) -> list[str]:
    return parse_user_select(raw, tenant) or list(DEFAULT_USER_SELECT)


def expand_manager(q: Query, tenant: Tenant) -> list[str] | None:
    """``$expand=manager`` or ``manager($select=...)``: the manager's properties, or None."""
    raw = q.get("$expand")
    if raw is None or not raw.strip():
        return None
    m = _EXPAND.match(raw)
    if m is None:
        raise no_such_property(raw.split("(")[0].strip(), "user")
    inner = m.group(1)
    return parse_user_select(inner, tenant) if inner else list(DEFAULT_USER_SELECT)


def user_filter(q: Query, tenant: Tenant) -> Filter | None:
    raw = q.get("$filter")
    if raw is None or not raw.strip():
        return None
    rules = tenant.filter_rules_cache
    if rules is None:
        rules = tenant.filter_rules_cache = user_filter_rules(p["name"] for p in tenant.extension_properties)
    try:
        return parse_filter(raw, rules, "User")
    except FilterError as exc:
        raise GraphError(400, exc.code, exc.message) from exc


def top(q: Query) -> int:
    # https://learn.microsoft.com/graph/paging : users page size 1..999
    raw = q.get("$top")
    if raw is None:
        return DEFAULT_TOP
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 1 <= value <= MAX_TOP:
        raise GraphError(
            400,
            "Request_UnsupportedQuery",
            f"Invalid page size specified: '{raw}'. Must be between 1 and 999 inclusive.",
        )
    return value


def advanced_checks(q: Query, flt: Filter | None, search: str | None, orderby: str | None, expand: bool) -> bool:
    """Enforce https://learn.microsoft.com/graph/aad-advanced-queries; return whether it is advanced."""
    count = (q.get("$count") or "").lower() == "true"
    advanced = False
    if search is not None:
        if not q.eventual:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                "Request with $search query parameter only works "
                "through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
            )
        advanced = True
    if flt is not None and flt.needs_advanced:
        op = flt.first_advanced or "ne"
        label = "null" if op == "null" else op
        if not q.eventual:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                f"Operator '{label}' is not supported because the "
                f"'ConsistencyLevel:eventual' header is missing. {ADVANCED_DOC}",
            )
        if not count:
            raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
        advanced = True
    if orderby is not None and flt is not None:
        if not (q.eventual and count):
            raise GraphError(400, "Request_UnsupportedQuery", "Sorting not supported for current query.")
        advanced = True
    if q.eventual and count:
        advanced = True
    if advanced and expand:
        # "$expand is not currently supported with advanced queries" (aad-advanced-queries, note)
        raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
    return advanced


def orderby(raw: str) -> tuple[str, bool]:
    parts = raw.strip().split()
    prop = USER_PROPERTY_BY_LOWER.get(parts[0].lower()) if parts else None
    if (
        prop is None
        or prop not in ORDERABLE_USER
        or len(parts) > 2
        or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc"))
    ):
        raise GraphError(400, "Request_UnsupportedQuery", "Sorting not supported for current query.")
    return prop, len(parts) == 2 and parts[1].lower() == "desc"


def search(raw: str) -> Callable[[User], bool]:
    """``$search="displayName:wa" AND "mail:x"``: tokenized prefix match (search-query-parameter docs)."""
    text = raw.strip()
    clauses = _SEARCH_CLAUSE.findall(text)
    rest = _SEARCH_CLAUSE.sub("", text).replace("AND", "").replace("OR", "").strip()
    if not clauses or rest:
        raise GraphError(
            400, "Request_UnsupportedQuery", f"Syntax error: character '\"' is not valid at position 0 in '{raw}'."
        )
    use_or = " OR " in text
    tests: list[Callable[[User], bool]] = []
    for prop_name, value in clauses:
        prop = USER_PROPERTY_BY_LOWER.get(prop_name.lower())
        if prop is None or prop not in SEARCHABLE_USER:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                f"Unsupported or invalid query filter clause specified for property '{prop_name}' of resource 'User'.",
            )
        needle = value.lower()

        def test(u: User, prop: str = prop, needle: str = needle) -> bool:
            v = getattr(u, prop)
            if v is None:
                return False
            s = str(v).lower()
            return s.startswith(needle) or any(w.startswith(needle) for w in re.split(r"[\s.@_\-]+", s))

        tests.append(test)
    if use_or:
        return lambda u: any(t(u) for t in tests)
    return lambda u: all(t(u) for t in tests)
