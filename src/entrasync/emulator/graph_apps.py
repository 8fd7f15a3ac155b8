"""Directory extension definitions: the owner application and its extensionProperties.

- https://learn.microsoft.com/graph/api/application-list-extensionproperty
  (``/applications/{objectId}/extensionProperties`` and ``/applications(appId='{appId}')/...``)
- https://learn.microsoft.com/graph/api/extensionproperty-get
- https://learn.microsoft.com/graph/api/directoryobject-getavailableextensionproperties
Reading them needs Application.Read.All or Directory.Read.All (User.Read.All is not enough); a
caller with only User.Read.All can still check a name with ``GET /users?$top=1&$select=<name>``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from entrasync.emulator.errors import GraphError, json_response, not_found
from entrasync.emulator.graph_query import APPLICATION_READ, Ctx, check_roles

if TYPE_CHECKING:
    from entrasync.emulator.graph_api import GraphApi

_BY_APP_ID = re.compile(r"^applications\(appId='([^']+)'\)$", re.IGNORECASE)
EXT_TYPE = "#microsoft.graph.extensionProperty"


def _owner(ctx: Ctx, head: str, rest: list[str]) -> tuple[dict[str, str], list[str]]:
    app = ctx.tenant.extension_app
    m = _BY_APP_ID.match(head)
    if m is not None:
        if not app or m.group(1).lower() != app["appId"].lower():
            raise not_found(m.group(1))
        return app, rest
    if not rest:
        raise GraphError(400, "Request_BadRequest", "Unsupported Query.")  # listing applications: not emulated
    if not app or rest[0].lower() != app["id"].lower():
        raise not_found(rest[0])
    return app, rest[1:]


def applications(api: GraphApi, request: Request, segments: list[str], method: str, ctx: Ctx) -> Response:
    check_roles(ctx.claims, APPLICATION_READ)
    api.method(method, "GET")
    app, rest = _owner(ctx, segments[0], segments[1:])
    root = api.state.graph_root
    if not rest:
        body = {"@odata.context": f"{root}/$metadata#applications/$entity", **app, "signInAudience": "AzureADMyOrg"}
        return json_response(request, body)
    if rest[0].lower() != "extensionproperties" or len(rest) > 2:
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[0]}'.")
    props = ctx.tenant.extension_properties
    context = f"{root}/$metadata#applications('{app['id']}')/extensionProperties"
    if len(rest) == 2:
        found = next((p for p in props if p["id"] == rest[1]), None)
        if found is None:
            raise not_found(rest[1])
        return json_response(request, {"@odata.context": f"{context}/$entity", **found})
    flt = request.query_params.get("$filter")
    rows = props
    if flt:
        m = re.fullmatch(r"\s*name\s+eq\s+'([^']*)'\s*", flt)
        if m is None:  # "Supports $filter (eq on name)"
            raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
        rows = [p for p in props if p["name"].lower() == m.group(1).lower()]
    return json_response(request, {"@odata.context": context, "value": rows})


async def directory_objects(api: GraphApi, request: Request, rest: list[str], method: str, ctx: Ctx) -> Response:
    if len(rest) != 1 or rest[0].lower() not in (
        "getavailableextensionproperties",
        "microsoft.graph.getavailableextensionproperties",
    ):
        raise GraphError(
            400, "BadRequest", f"Resource not found for the segment '{(rest or ['directoryObjects'])[0]}'."
        )
    api.method(method, "POST")
    check_roles(ctx.claims, APPLICATION_READ)
    raw = await request.body()
    try:
        body: Any = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as exc:
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from exc
    synced = body.get("isSyncedFromOnPremises") if isinstance(body, dict) else None
    rows = [
        {"@odata.type": EXT_TYPE, **p}
        for p in ctx.tenant.extension_properties
        if synced is None or p["isSyncedFromOnPremises"] == bool(synced)
    ]
    context = f"{api.state.graph_root}/$metadata#Collection(extensionProperty)"
    return json_response(request, {"@odata.context": context, "value": rows})
