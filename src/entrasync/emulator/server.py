"""Start the Graph + identity-platform emulator over HTTPS (uvicorn), in a thread or in the foreground.

The listening socket is made with ``proto=IPPROTO_TCP`` and TCP_NODELAY so asyncio does not leave
Nagle on (about 40 ms per loopback request otherwise; PRODUCT.md Appendix B).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import signal
import socket
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrasync.emulator.admin_api import admin_routes
from entrasync.emulator.app_certificate import generate_app_certificate
from entrasync.emulator.errors import GRAPH_JSON, GraphError, error_body, error_response
from entrasync.emulator.graph_api import GraphApi
from entrasync.emulator.identity import Identity
from entrasync.emulator.paging import TokenCodec
from entrasync.emulator.state import EmulatorState
from entrasync.emulator.store import Tenant
from entrasync.emulator.tenant import generate
from entrasync.emulator.tls import generate_tls

log = logging.getLogger("entrasync.emulator")


@dataclass(frozen=True)
class EmulatorInfo:
    graph_url: str
    login_url: str
    ca_bundle: str
    tenant_id: str
    client_id: str
    client_secret: str
    admin_url: str
    client_certificate: str = ""  # PEM file: the app registration's certificate and its private key

    def as_json(self) -> dict[str, str]:
        return asdict(self)


class _ResetConnection(Exception):
    """Raised after a partial body to make uvicorn drop the connection (the "reset" fault)."""


class _QuietReset(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _ResetConnection))


class GraphMiddleware:
    """Request ids, counters, injected faults, and a Graph envelope for any unhandled exception."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

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
        if not emulator_admin:
            self.state.counters[f"{scope['method']} {path}"] += 1
            fault = self.state.faults.take(path)
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            if fault is None:
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
                raise _ResetConnection(path)
            else:
                await self._rewrite(scope, receive, send, fault.kind)
        except _ResetConnection:
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


def build_app(state: EmulatorState) -> ASGIApp:
    codec = TokenCodec(secrets.token_bytes(32))
    graph = GraphApi(state, codec)
    identity = Identity(state)

    async def graph_endpoint(request: Request) -> Response:
        try:
            return await graph(request)
        except GraphError as err:
            return error_response(request, err)

    async def not_found(request: Request) -> Response:
        return error_response(
            request,
            GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource not found for the segment '{request.url.path.strip('/').split('/')[0]}'.",
            ),
        )

    all_methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    routes = [
        Mount("/_emulator", routes=admin_routes(state)),
        Route("/v1.0", graph_endpoint, methods=all_methods),
        Route("/v1.0/{path:path}", graph_endpoint, methods=all_methods),
        Route("/{tenant}/v2.0/.well-known/openid-configuration", identity.openid_configuration),
        Route("/{tenant}/discovery/v2.0/keys", identity.jwks),
        Route("/{tenant}/oauth2/v2.0/authorize", identity.authorize, methods=["GET", "POST"]),
        Route("/{tenant}/oauth2/v2.0/token", identity.token, methods=["POST"]),
        Route("/{tenant}/adminconsent", identity.adminconsent, methods=["GET", "POST"]),
        Route("/{tenant}/v2.0/adminconsent", identity.adminconsent, methods=["GET", "POST"]),
        Route("/{path:path}", not_found, methods=all_methods),
    ]
    app = Starlette(routes=routes)

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        return error_response(
            request, GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request uri.")
        )

    app.add_exception_handler(405, method_not_allowed)
    return GraphMiddleware(app, state)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


class RunningEmulator:
    """A started emulator: ``info`` for clients, ``tenant`` to inspect, ``stop()`` to shut down."""

    def __init__(
        self, info: EmulatorInfo, state: EmulatorState, server: uvicorn.Server, thread: threading.Thread
    ) -> None:
        self.info = info
        self.state = state
        self.tenant: Tenant = state.tenant
        self._server = server
        self._thread = thread

    def stop(self) -> None:
        # Idle keep-alive clients (tests, the demo) must not hold the shutdown for the graceful timeout.
        self._server.should_exit = True
        self._server.force_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(
    *, users: int = 200, seed: int = 1, data_dir: Path, host: str = "127.0.0.1", port: int = 0
) -> RunningEmulator:
    """Generate the tenant, certificates and keys, and serve in a daemon thread until ``stop()``."""
    data_dir = Path(data_dir)
    tls = generate_tls(data_dir, hosts=tuple(dict.fromkeys((host, "127.0.0.1", "localhost", "::1"))))
    state = EmulatorState.create(generate(users, seed), seed)
    app_cert = generate_app_certificate(data_dir)
    state.app_certificate_keys.update({app_cert.x5t: app_cert.public_key, app_cert.x5t_s256: app_cert.public_key})
    sock = _listen(host, port)
    real_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    base = f"https://{shown_host}:{real_port}"
    state.base_url = base
    logging.getLogger("uvicorn.error").addFilter(_QuietReset())
    config = uvicorn.Config(
        build_app(state),
        ssl_certfile=str(tls.cert),
        ssl_keyfile=str(tls.key),
        http="httptools",
        loop="asyncio",
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # pragma: no cover - surfaced to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run, name="entrasync-emulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if failure or not thread.is_alive():
            raise RuntimeError(f"emulator failed to start: {failure[0] if failure else 'thread exited'}")
        if time.monotonic() > deadline:
            raise RuntimeError("emulator did not start within 15 s")
        time.sleep(0.01)
    info = EmulatorInfo(
        graph_url=base,
        login_url=base,
        ca_bundle=str(tls.ca),
        tenant_id=state.tenant.tenant_id,
        client_id=state.client_id,
        client_secret=state.client_secret,
        admin_url=f"{base}/_emulator",
        client_certificate=str(app_cert.path),
    )
    return RunningEmulator(info, state, server, thread)


def serve(*, users: int, seed: int, host: str, port: int, data_dir: Path) -> None:
    """Run in the foreground: print one JSON line (EmulatorInfo) once accepting, stop on SIGINT/SIGTERM."""
    running = start_in_thread(users=users, seed=seed, data_dir=data_dir, host=host, port=port)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    sys.stdout.write(json.dumps(running.info.as_json()) + "\n")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        running.stop()


def main_cli(
    users: int = 1000, seed: int = 1, host: str = "127.0.0.1", port: int = 8443, data_dir: Path | None = None
) -> None:
    """Entry point for ``entrasync emulator [--users N] [--seed S] [--host] [--port] [--data-dir]``."""
    serve(users=users, seed=seed, host=host, port=port, data_dir=Path(data_dir or Path.cwd() / "emulator-data"))


if __name__ == "__main__":  # pragma: no cover
    main_cli()
