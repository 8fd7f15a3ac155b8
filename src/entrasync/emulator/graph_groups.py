"""Graph v1.0 groups, their members and transitive members, and deleted items (with restore).

- https://learn.microsoft.com/graph/api/group-list-members and group-list-transitivemembers
  (``@odata.type`` on each member; the ``/microsoft.graph.user`` cast)
- https://learn.microsoft.com/graph/api/directory-deleteditems-list and directory-deleteditems-restore
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from entrasync.emulator.errors import GraphError, json_response, not_found
from entrasync.emulator.graph_query import (
    GROUP_READ,
    USER_READ,
    USER_WRITE,
    Ctx,
    Query,
    advanced_checks,
    check_roles,
    parse_select,
    parse_user_select,
    top,
    type_name,
)
from entrasync.emulator.objects import DEFAULT_USER_SELECT, GROUP_PROPERTIES, GROUP_PROPERTY_BY_LOWER, Group
from entrasync.emulator.objects import USER_PROPERTY_BY_LOWER as USER_BY_LOWER
from entrasync.emulator.odata_filter import GROUP_FILTER_RULES, FilterError, parse_filter

if TYPE_CHECKING:
    from entrasync.emulator.graph_api import GraphApi

_CASTS = {
    "microsoft.graph.user": "user",
    "microsoft.graph.group": "group",
    "microsoft.graph.device": "device",
    "microsoft.graph.orgcontact": "orgContact",
}


def groups(api: GraphApi, request: Request, q: Query, rest: list[str], method: str, ctx: Ctx) -> Response:
    api.method(method, "GET")
    if not rest:
        return _list_groups(api, request, q, ctx)
    if rest[0].lower() in ("delta", "microsoft.graph.delta", "delta()") and len(rest) == 1:
        return api.delta.handle(request, q, "groups", ctx)
    group = ctx.tenant.groups.get(rest[0])
    if group is None:
        raise not_found(rest[0])
    if len(rest) == 1:
        select = parse_select(q.get("$select"), GROUP_PROPERTY_BY_LOWER, "group") or list(GROUP_PROPERTIES)
        body = {
            "@odata.context": f"{api.state.graph_root}/$metadata#groups/$entity",
            **{p: group.get(p) for p in select},
        }
        return json_response(request, body)
    rel = rest[1].lower()
    if rel not in ("members", "transitivemembers") or len(rest) > 3:
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[1]}'.")
    cast = None
    if len(rest) == 3:
        cast = rest[2].lower()
        if cast not in _CASTS:
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[2]}'.")
    return _members(api, request, q, group, rel == "transitivemembers", cast, rest[1], ctx)


def _list_groups(api: GraphApi, request: Request, q: Query, ctx: Ctx) -> Response:
    token = q.get("$skiptoken")
    st: dict[str, Any] = {}
    if token is not None:
        st = api.decode_page(token, "groups", ctx)
        params: dict[str, str] = st["q"]
    else:
        params = {k: v for k, v in q.params.items() if k != "$skiptoken"}
    top_q = Query.of(params, q)
    size = top(top_q)
    select = parse_select(params.get("$select"), GROUP_PROPERTY_BY_LOWER, "group") or list(GROUP_PROPERTIES)
    pred: Callable[[Any], bool] | None = None
    raw = params.get("$filter")
    if raw:
        try:
            flt = parse_filter(raw, GROUP_FILTER_RULES, "Group")
        except FilterError as exc:
            raise GraphError(400, exc.code, exc.message) from exc
        advanced_checks(top_q, flt, None, None, False)
        pred = flt.predicate
    found = sorted(ctx.tenant.groups.values(), key=lambda g: g.id)
    if pred is not None:
        found = [g for g in found if pred(g)]
    off = int(st.get("off", 0))
    page = found[off : off + size]
    body: dict[str, Any] = {"@odata.context": f"{api.state.graph_root}/$metadata#groups"}
    if off + size < len(found):
        tok = api.encode_page(ctx, {"k": "groups", "q": params, "off": off + size})
        body["@odata.nextLink"] = api.next_link("groups", params, tok)
    body["value"] = [{p: g.get(p) for p in select} for g in page]
    return json_response(request, body)


def _members(
    api: GraphApi,
    request: Request,
    q: Query,
    group: Group,
    transitive: bool,
    cast: str | None,
    segment: str,
    ctx: Ctx,
) -> Response:
    tenant = ctx.tenant
    token = q.get("$skiptoken")
    st: dict[str, Any] = {}
    kind = f"members:{group.id}:{int(transitive)}:{cast}"
    if token is not None:
        st = api.decode_page(token, kind, ctx)
        params: dict[str, str] = st["q"]
    else:
        params = {k: v for k, v in q.params.items() if k != "$skiptoken"}
    size = top(Query.of(params, q))
    raw_select = params.get("$select")
    ids = tenant.transitive_members(group) if transitive else tenant.live_members(group)
    type_filter = _CASTS.get(cast or "")
    typed = [(m, tenant.object_type(m)) for m in ids]
    if type_filter:
        typed = [(m, t) for m, t in typed if t == type_filter]
    off = int(st.get("off", 0))
    page = typed[off : off + size]
    user_select = (parse_user_select(raw_select, tenant) if type_filter == "user" else None) or list(
        DEFAULT_USER_SELECT
    )
    generic_select = [s.strip() for s in raw_select.split(",")] if raw_select else None
    rows = [
        _member_row(ctx, oid, otype or "user", user_select, generic_select, type_filter is not None)
        for oid, otype in page
    ]
    context = f"{api.state.graph_root}/$metadata#" + ("users" if type_filter == "user" else "directoryObjects")
    body: dict[str, Any] = {"@odata.context": context}
    if off + size < len(typed):
        tok = api.encode_page(ctx, {"k": kind, "q": params, "off": off + size})
        path = f"groups/{group.id}/{segment}" + (f"/{cast}" if cast else "")
        body["@odata.nextLink"] = api.next_link(path, params, tok)
    body["value"] = rows
    return json_response(request, body)


def _member_row(
    ctx: Ctx, oid: str, otype: str, user_select: list[str], generic: list[str] | None, casted: bool
) -> dict[str, Any]:
    tenant = ctx.tenant
    row: dict[str, Any] = {"@odata.type": type_name(otype)}
    if otype == "user":
        user = tenant.users[oid]
        if casted or generic is None:
            row.update(user.as_dict(user_select))
        else:
            row.update({p: user.get(USER_BY_LOWER[p.lower()]) for p in ["id", *generic] if p.lower() in USER_BY_LOWER})
        return row
    obj: Any = tenant.groups.get(oid) or tenant.devices.get(oid) or tenant.contacts.get(oid)
    fields = ["id", *generic] if generic else [k for k in vars(obj) if k != "members"]
    for f in fields:
        if hasattr(obj, f) and f != "members":
            value = getattr(obj, f)
            row[f] = list(value) if isinstance(value, tuple) else value
    return row


def deleted_items(api: GraphApi, request: Request, q: Query, rest: list[str], method: str, ctx: Ctx) -> Response:
    tenant = ctx.tenant
    root = api.state.graph_root
    if not rest:
        raise GraphError(400, "Request_BadRequest", "Unsupported Query.")
    if rest[0].lower() == "microsoft.graph.user" and len(rest) == 1:
        api.method(method, "GET")
        check_roles(ctx.claims, USER_READ)
        size = top(q)
        select = parse_user_select(q.get("$select"), tenant, extra=("deleteddatetime",))
        props = select or [*DEFAULT_USER_SELECT, "deletedDateTime"]
        props = ["deletedDateTime" if p == "deleteddatetime" else p for p in props]
        users = sorted(tenant.deleted_users.values(), key=lambda u: u.id)
        off = 0
        if q.get("$skiptoken"):
            off = int(api.decode_page(q.get("$skiptoken") or "", "deleted", ctx).get("off", 0))
        body: dict[str, Any] = {"@odata.context": f"{root}/$metadata#directory/deletedItems/microsoft.graph.user"}
        if off + size < len(users):
            params = {k: v for k, v in q.params.items() if k != "$skiptoken"}
            tok = api.encode_page(ctx, {"k": "deleted", "off": off + size})
            body["@odata.nextLink"] = api.next_link("directory/deletedItems/microsoft.graph.user", params, tok)
        body["value"] = [u.as_dict(props) for u in users[off : off + size]]
        return json_response(request, body)
    oid = rest[0]
    user = tenant.deleted_users.get(oid)
    entity = {"@odata.context": f"{root}/$metadata#directoryObjects/$entity", "@odata.type": type_name("user")}
    if len(rest) == 1:
        api.method(method, "GET")
        check_roles(ctx.claims, USER_READ)
        if user is None:
            raise not_found(oid)
        return json_response(request, {**entity, **user.as_dict([*DEFAULT_USER_SELECT, "deletedDateTime"])})
    if len(rest) == 2 and rest[1].lower() in ("restore", "microsoft.graph.restore"):
        api.method(method, "POST")
        check_roles(ctx.claims, USER_WRITE)
        if user is None:
            raise not_found(oid)
        restored = tenant.restore_user(oid)
        return json_response(request, {**entity, **restored.as_dict(DEFAULT_USER_SELECT)})
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[-1]}'.")


def member_of(api: GraphApi, request: Request, q: Query, uid: str, rest: list[str], ctx: Ctx) -> Response:
    """``GET /users/{id}/memberOf`` and ``/transitiveMemberOf`` (optionally cast to
    ``microsoft.graph.group``): the groups holding the user, directly or through nested groups.

    https://learn.microsoft.com/graph/api/user-list-memberof and user-list-transitivememberof: the OData
    cast needs ``ConsistencyLevel: eventual`` and ``$count=true`` (advanced query). One page of up to
    ``$top`` groups (the sample tenant's users belong to a handful).
    """
    check_roles(ctx.claims, GROUP_READ)
    tenant = ctx.tenant
    transitive = rest[1].lower() == "transitivememberof"
    if len(rest) == 3:
        if rest[2].lower() != "microsoft.graph.group":
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[2]}'.")
        if not (q.eventual and (q.get("$count") or "").lower() == "true"):
            raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
    ids = tenant.transitive_member_of(uid) if transitive else tenant.member_of(uid)
    select = parse_select(q.get("$select"), GROUP_PROPERTY_BY_LOWER, "group") or list(GROUP_PROPERTIES)
    rows = [{"@odata.type": type_name("group"), **{p: tenant.groups[g].get(p) for p in select}} for g in ids]
    body: dict[str, Any] = {"@odata.context": f"{api.state.graph_root}/$metadata#groups"}
    if (q.get("$count") or "").lower() == "true":
        body["@odata.count"] = len(rows)
    body["value"] = rows[: top(q)]
    return json_response(request, body)
