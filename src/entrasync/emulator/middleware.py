"""The emulator's ASGI middleware: request ids, per-tenant counters, injected faults and throttling
(https://learn.microsoft.com/graph/throttling: 429 with Retry-After; 503/504 may carry it too), and
Graph's error envelope (https://learn.microsoft.com/graph/errors) for any unhandled exception."""

from __future__ import annotations

import asyncio
import logging
import uuid

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrasync.emulator.errors import GRAPH_JSON, error_body
from entrasync.emulator.state import EmulatorState
from entrasync.emulator.tenants import TenantState

log = logging.getLogger("entrasync.emulator")


class ResetConnection(Exception):
    """Raised after a partial body to make uvicorn drop the connection (the "reset" fault)."""


class QuietReset(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ResetConnection))


class GraphMiddleware:
    """Request ids, per-tenant counters, injected faults and throttling, and a Graph envelope for any
    unhandled exception. A request belongs to the tenant of its bearer token (Graph) or of its path
    (identity platform); anything else to the default tenant."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    def _tenant_of(self, scope: Scope, path: str) -> TenantState:
        state = self.state
        ts: TenantState | None = None
        if path.startswith("/v1.0"):
            auth = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            if auth[:7].lower() == b"bearer ":
                ts = state.tenant_of_token(auth[7:].decode("latin-1").strip())
        elif state.tenants.multi:
            ts = state.tenants.resolve(path.split("/", 2)[1])
        return ts or state.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        rid = str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = rid
        crid = next((v.decode() for k, v in scope["headers"] if k == b"client-request-id"), None)
        emulator_admin = path.startswith("/_emulator")
        fault = None
        throttled: str | None = None
        if not emulator_admin:
            ts = self._tenant_of(scope, path)
            ts.counters[f"{scope['method']} {path}"] += 1
            fault = ts.faults.take(path) or self.state.app_faults.take(path)
            if fault is None and path.startswith("/v1.0"):
                throttled = ts.throttle.take()
                if throttled is None:
                    throttled = self.state.app_throttle.take()
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            if throttled is not None:
                await self._throttle(send, "429", throttled, rid, crid)
            elif fault is None:
                await self.app(scope, receive, tracking_send)
            elif fault.kind == "delay":
                await asyncio.sleep(fault.delay)
                await self.app(scope, receive, tracking_send)
            elif fault.kind in ("429", "503", "504"):
                await self._throttle(send, fault.kind, fault.retry_after, rid, crid)
            elif fault.kind == "reset":
                body = b'{"@odata.context":"' + b"x" * 64
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-type", GRAPH_JSON.encode()), (b"content-length", b"100000")],
                    }
                )
                await send({"type": "http.response.body", "body": body, "more_body": True})
                raise ResetConnection(path)
            else:
                await self._rewrite(scope, receive, send, fault.kind)
        except ResetConnection:
            raise
        except Exception:
            log.exception("unhandled error for %s", path)
            if started:
                raise
            body = error_body("InternalServerError", "An internal server error occurred.", rid, crid)
            await self._send(send, 500, body, rid, crid)

    async def _send(
        self,
        send: Send,
        status: int,
        body: bytes,
        rid: str,
        crid: str | None,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        headers = [
            (b"content-type", GRAPH_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"request-id", rid.encode()),
            *(extra or []),
        ]
        if crid:
            headers.append((b"client-request-id", crid.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _throttle(self, send: Send, kind: str, retry_after: str | None, rid: str, crid: str | None) -> None:
        # https://learn.microsoft.com/graph/throttling : 429 with Retry-After; 503/504 may carry it too.
        code, message = {
            "429": (
                "TooManyRequests",
                "Too many requests. Please retry after the time in the Retry-After header.",
            ),
            "503": ("serviceNotAvailable", "The service is temporarily unavailable. Please try again later."),
            "504": ("UnknownError", "The gateway timed out waiting for the service."),
        }[kind]
        extra = [(b"retry-after", retry_after.encode())] if retry_after is not None else []
        await self._send(send, int(kind), error_body(code, message, rid, crid), rid, crid, extra)

    async def _rewrite(self, scope: Scope, receive: Receive, send: Send, kind: str) -> None:
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        if kind == "truncate":
            body = body[: max(1, len(body) // 2)]
        elif kind == "no_value":
            try:
                data = orjson.loads(body)
                if isinstance(data, dict):
                    data.pop("value", None)
                body = orjson.dumps(data)
            except orjson.JSONDecodeError:
                pass
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": start.get("status", 200), "headers": headers})
        await send({"type": "http.response.body", "body": body})
