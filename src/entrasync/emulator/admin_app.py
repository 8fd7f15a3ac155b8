"""The admin API's routing: the default tenant's routes at ``/_emulator/...``, the same routes for any
tenant at ``/_emulator/tenants/{tid}/...``, the tenant list, and app-wide faults, throttle and counters
at ``/_emulator/app/...`` (the one multi-tenant app registration, across all tenants)."""

from __future__ import annotations

from collections import Counter

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from entrasync.emulator.admin_api import body_of, error, fault_endpoint, guard, json, tenant_routes
from entrasync.emulator.state import EmulatorState


def admin_routes(state: EmulatorState) -> list[BaseRoute]:
    per_tenant = tenant_routes(state)

    def admin_url() -> str:
        return f"{state.base_url}/_emulator"

    async def tenants(request: Request) -> Response:
        default = state.default
        return json(
            {
                "clientId": state.client_id,
                "value": [ts.describe(admin_url(), ts is default) for ts in state.tenants],
            }
        )

    async def one_tenant(request: Request) -> Response:
        tid = request.path_params["tid"]
        ts = state.tenants.get(tid) or state.tenants.resolve(tid)
        if ts is None:
            return error(404, f"not found: tenant {tid}")
        return json(ts.describe(admin_url(), ts is state.default))

    async def app_throttle(request: Request) -> Response:
        if request.method == "DELETE":
            state.app_throttle.configure(0, state.app_throttle.window)
        elif request.method == "PUT":
            body = await body_of(request)
            state.app_throttle.configure(int(body.get("limit", 0)), float(body.get("window", 20)))
        return json(state.app_throttle.describe())

    async def app_counters(request: Request) -> Response:
        if request.method == "DELETE":
            for ts in state.tenants:
                ts.counters.clear()
            return Response(status_code=204)
        total: Counter[str] = Counter()
        for ts in state.tenants:
            total.update(ts.counters)
        return json(dict(total))

    return [
        Route("/tenants", guard(tenants)),
        Route("/tenants/{tid}", guard(one_tenant)),
        Mount("/tenants/{tid}", routes=per_tenant),
        Route("/app/faults", fault_endpoint(lambda r: state.app_faults), methods=["GET", "POST", "DELETE"]),
        Route("/app/throttle", guard(app_throttle), methods=["GET", "PUT", "DELETE"]),
        Route("/app/counters", guard(app_counters), methods=["GET", "DELETE"]),
        *per_tenant,
    ]
