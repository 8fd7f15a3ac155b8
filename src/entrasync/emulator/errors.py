"""Graph's error envelope, so every failure looks like Microsoft Graph's (never HTML or a traceback).

Shape: https://learn.microsoft.com/graph/errors
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

GRAPH_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"


class GraphError(Exception):
    """Raised anywhere in a Graph handler; rendered as Graph's error envelope."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def not_found(resource: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{resource}' does not exist or one of its queried reference-property objects are not present.",
    )


def request_ids(request: Request) -> tuple[str, str | None]:
    rid = request.scope.get("state", {}).get("request_id")
    if not rid:
        rid = str(uuid.uuid4())
        request.scope.setdefault("state", {})["request_id"] = rid
    return rid, request.headers.get("client-request-id")


def graph_headers(request: Request) -> dict[str, str]:
    rid, crid = request_ids(request)
    headers = {"request-id": rid}
    if crid:
        headers["client-request-id"] = crid
    return headers


def error_body(code: str, message: str, request_id: str, client_request_id: str | None) -> bytes:
    inner: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id or request_id,
    }
    return orjson.dumps({"error": {"code": code, "message": message, "innerError": inner}})


def error_response(request: Request, err: GraphError) -> Response:
    rid, crid = request_ids(request)
    headers = {**graph_headers(request), **err.headers}
    return Response(error_body(err.code, err.message, rid, crid), err.status, headers=headers, media_type=GRAPH_JSON)


def json_response(request: Request, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(payload),
        status,
        headers={**graph_headers(request), **(headers or {})},
        media_type=GRAPH_JSON,
    )
