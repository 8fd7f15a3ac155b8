"""Start the Graph + identity-platform emulator over HTTPS (uvicorn), in a thread or in the foreground.

The listening socket is made with ``proto=IPPROTO_TCP`` and TCP_NODELAY so asyncio does not leave
Nagle on (about 40 ms per loopback request otherwise; PRODUCT.md Appendix B). With several tenants
the ready line names a ``tenants_file`` (JSON in the data folder) listing every tenant.
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from entrasync.emulator.admin_app import admin_routes
from entrasync.emulator.app_certificate import generate_app_certificate
from entrasync.emulator.errors import GraphError, error_response
from entrasync.emulator.graph_api import GraphApi
from entrasync.emulator.identity import Identity
from entrasync.emulator.middleware import GraphMiddleware, QuietReset
from entrasync.emulator.paging import TokenCodec
from entrasync.emulator.state import EmulatorState
from entrasync.emulator.store import Tenant
from entrasync.emulator.tenant_profiles import tenant_sizes
from entrasync.emulator.tenants import TenantRegistry
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
    tenants_file: str = ""  # JSON file listing every tenant (id, domains, size, admin URL)
    tenant_count: int = 1

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


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
        self.tenant: Tenant = state.tenant  # the default tenant's directory
        self._server = server
        self._thread = thread

    def tenant_by_id(self, tenant_id: str) -> Tenant:
        """A tenant's directory (generated now if it was not yet)."""
        ts = self.state.tenants.get(tenant_id)
        if ts is None:
            raise KeyError(tenant_id)
        return ts.store

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
    *,
    users: int = 200,
    seed: int = 1,
    data_dir: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    tenants: int = 1,
    min_users: int = 100,
    max_users: int = 2000,
) -> RunningEmulator:
    """Generate the default tenant, certificates and keys, and serve in a daemon thread until ``stop()``.

    ``tenants`` > 1 serves that many tenants, sized from ``seed`` between ``min_users`` and ``max_users``
    (``users`` is the size of a single tenant); all but the default one are generated on first use.
    """
    data_dir = Path(data_dir)
    tls = generate_tls(data_dir, hosts=tuple(dict.fromkeys((host, "127.0.0.1", "localhost", "::1"))))
    if tenants < 1 or not 1 <= min_users <= max_users:
        raise ValueError("need tenants >= 1 and 1 <= min_users <= max_users")
    registry = TenantRegistry(seed, tenant_sizes(tenants, seed, users, min_users, max_users))
    state = EmulatorState.create(registry, seed)
    state.default.store  # noqa: B018 - the default tenant is generated before the ready line
    app_cert = generate_app_certificate(data_dir)
    state.app_certificate_keys.update({app_cert.x5t: app_cert.public_key, app_cert.x5t_s256: app_cert.public_key})
    sock = _listen(host, port)
    real_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    base = f"https://{shown_host}:{real_port}"
    state.base_url = base
    logging.getLogger("uvicorn.error").addFilter(QuietReset())
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
        tenants_file=str(write_tenants_file(state, data_dir)),
        tenant_count=len(registry),
    )
    return RunningEmulator(info, state, server, thread)


def write_tenants_file(state: EmulatorState, data_dir: Path) -> Path:
    """``tenants.json``: the app registration and every tenant (id, names, size, admin URL), so a
    client of a 1,000-tenant emulator can find them all without a 1,000-entry ready line."""
    admin_url = f"{state.base_url}/_emulator"
    doc = {
        "graph_url": state.base_url,
        "login_url": state.base_url,
        "client_id": state.client_id,
        "tenants": [ts.describe(admin_url, ts is state.default) for ts in state.tenants],
    }
    path = Path(data_dir) / "tenants.json"
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    return path


def serve(
    *,
    users: int,
    seed: int,
    host: str,
    port: int,
    data_dir: Path,
    tenants: int = 1,
    min_users: int = 100,
    max_users: int = 2000,
) -> None:
    """Run in the foreground: print one JSON line (EmulatorInfo) once accepting, stop on SIGINT/SIGTERM."""
    running = start_in_thread(
        users=users,
        seed=seed,
        data_dir=data_dir,
        host=host,
        port=port,
        tenants=tenants,
        min_users=min_users,
        max_users=max_users,
    )
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
    users: int = 1000,
    seed: int = 1,
    host: str = "127.0.0.1",
    port: int = 8443,
    data_dir: Path | None = None,
    tenants: int = 1,
    min_users: int = 100,
    max_users: int = 2000,
) -> None:
    """Entry point for ``entrasync emulator [--users N] [--seed S] [--host] [--port] [--data-dir]
    [--tenants N --min-users A --max-users B]``."""
    serve(
        users=users,
        seed=seed,
        host=host,
        port=port,
        data_dir=Path(data_dir or Path.cwd() / "emulator-data"),
        tenants=tenants,
        min_users=min_users,
        max_users=max_users,
    )


if __name__ == "__main__":  # pragma: no cover
    main_cli()
