"""On-demand reads of a few users for ``people explain`` (spec §12), through the one Graph client.

Each is one request (a group path a few), so explaining a person costs a handful of requests:

- one user by object id or user principal name: ``GET /users/{id | UPN}?$select=<GRAPH_USER_SELECT>
  &$expand=manager($select=id)`` (https://learn.microsoft.com/graph/api/user-get: "{id | userPrincipalName}");
  404 -> None;
- the users claiming an e-mail (``mail``, else the user principal name, §4.2):
  ``GET /users?$filter=mail eq 'x' or userPrincipalName eq 'x'`` (both support ``eq`` without advanced
  query, https://learn.microsoft.com/graph/aad-advanced-queries, "user properties");
- whether a user passes the Graph filter: ``GET /users?$filter=(<definition>) and id eq '<id>'&$select=id``,
  sent as an advanced query (``ConsistencyLevel: eventual`` + ``$count=true``) when the definition
  needs one, as the refresh does (domain.graph_filter.needs_advanced_query);
- whether an id is soft-deleted: ``GET /directory/deletedItems/{id}`` (directory-deleteditems-get);
- the groups holding a user: ``GET /users/{id}/transitiveMemberOf/microsoft.graph.group`` and
  ``/memberOf/microsoft.graph.group`` (user-list-transitivememberof, user-list-memberof: the OData cast
  needs ``ConsistencyLevel: eventual`` and ``$count=true``); the nested path from a listed group down to
  a group holding the user directly, from ``GET /groups/{id}/members/microsoft.graph.group``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from entrasync.adapters.graph.client import GraphClient
from entrasync.adapters.graph.errors import GraphBadRequestError
from entrasync.adapters.graph.reader import MANAGER_EXPAND, USER_SELECT
from entrasync.domain.graph_filter import needs_advanced_query

__all__ = [
    "GroupRef",
    "Memberships",
    "group_path",
    "is_soft_deleted",
    "memberships",
    "passes_filter",
    "user_by_key",
    "users_with_email",
]

MAX_PATH_DEPTH = 8
MAX_GROUPS = 999


@dataclass(frozen=True, slots=True)
class GroupRef:
    id: str
    name: str | None


@dataclass(frozen=True, slots=True)
class Memberships:
    """The groups holding one user: through nested groups (``transitive``) and directly (``direct``)."""

    transitive: Mapping[str, GroupRef]
    direct: frozenset[str]


def _quote_literal(value: str) -> str:
    """An OData string literal: single quotes doubled (https://learn.microsoft.com/graph/query-parameters)."""
    return "'" + value.replace("'", "''") + "'"


def user_by_key(client: GraphClient, key: str, select: str = USER_SELECT) -> dict[str, Any] | None:
    """One live user by object id or user principal name, with its manager's id; None when there is none.
    ``select``: the properties the organisation's mapping reads (UserMapper.select)."""
    params: dict[str, str | int | bool] = {"$select": select, "$expand": MANAGER_EXPAND}
    try:
        return client.get(f"/users/{quote(key, safe='@')}", params)
    except GraphBadRequestError as exc:
        if exc.status in (400, 404):  # 400: not a valid object id or user principal name
            return None
        raise


def users_with_email(client: GraphClient, email: str, select: str = USER_SELECT) -> list[dict[str, Any]]:
    """Every live user whose ``mail`` or user principal name is ``email`` (Graph compares them
    case-insensitively), with their managers' ids."""
    lit = _quote_literal(email)
    params: dict[str, str | int | bool] = {
        "$select": select,
        "$expand": MANAGER_EXPAND,
        "$filter": f"mail eq {lit} or userPrincipalName eq {lit}",
        "$top": 50,
    }
    return list(client.get("/users", params, require_value=True)["value"])


def passes_filter(client: GraphClient, graph_filter: str, user_id: str) -> bool:
    """Whether the user is among those the Graph filter returns (Graph evaluates the definition itself)."""
    flt = f"({graph_filter}) and id eq {_quote_literal(user_id)}"
    params: dict[str, str | int | bool] = {"$select": "id", "$filter": flt, "$top": 1}
    advanced = needs_advanced_query(graph_filter)
    if advanced:
        params["$count"] = "true"
    page = client.get("/users", params, advanced=advanced, require_value=True)
    return any(d.get("id") == user_id for d in page["value"])


def is_soft_deleted(client: GraphClient, user_id: str) -> bool:
    try:
        client.get(f"/directory/deletedItems/{quote(user_id, safe='')}", {"$select": "id"})
    except GraphBadRequestError as exc:
        if exc.status in (400, 404):
            return False
        raise
    return True


def _groups(client: GraphClient, path: str) -> list[dict[str, Any]]:
    params: dict[str, str | int | bool] = {"$select": "id,displayName", "$top": MAX_GROUPS, "$count": "true"}
    return list(client.get(path, params, advanced=True, require_value=True)["value"])


def memberships(client: GraphClient, user_id: str) -> Memberships:
    """Two requests: the user's groups through nesting, and those holding the user directly."""
    uid = quote(user_id, safe="")
    transitive = {
        g["id"]: GroupRef(g["id"], g.get("displayName"))
        for g in _groups(client, f"/users/{uid}/transitiveMemberOf/microsoft.graph.group")
    }
    direct = frozenset(g["id"] for g in _groups(client, f"/users/{uid}/memberOf/microsoft.graph.group"))
    return Memberships(transitive, direct)


def group_path(client: GraphClient, listed: str, held: Memberships) -> list[GroupRef]:
    """The chain of groups from ``listed`` down to a group holding the user directly (``[listed]`` when
    the user is a direct member), walking only groups the user is a transitive member of; [] when
    ``listed`` does not hold the user at all."""
    groups = {k.lower(): v for k, v in held.transitive.items()}
    direct = {g.lower() for g in held.direct}
    start = groups.get(listed.lower())
    if start is None:
        return []
    if start.id.lower() in direct:
        return [start]
    paths: list[list[GroupRef]] = [[start]]
    seen = {start.id.lower()}
    for _ in range(MAX_PATH_DEPTH):
        nxt: list[list[GroupRef]] = []
        for path in paths:
            for child in _children(client, path[-1].id):
                key = child.lower()
                if key in seen or key not in groups:
                    continue
                seen.add(key)
                step = [*path, groups[key]]
                if key in direct:
                    return step
                nxt.append(step)
        if not nxt:
            break
        paths = nxt
    return [start]


def _children(client: GraphClient, group_id: str) -> Iterable[str]:
    return [g["id"] for g in _groups(client, f"/groups/{quote(group_id, safe='')}/members/microsoft.graph.group")]
