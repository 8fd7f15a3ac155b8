"""The emulator's admin API (JSON, no auth, loopback only): drive joiners, movers, leavers and faults.

Documented for humans in ADMIN_API.md. Every route here acts on one tenant: the default tenant under
``/_emulator/...``, tenant ``{tid}`` under ``/_emulator/tenants/{tid}/...`` (see :mod:`admin_app`).
Every change goes through :class:`Tenant` methods, so it is visible to list, member and delta reads
exactly as Graph would show it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from entrasync.emulator.faults import FAULT_KINDS, Fault, FaultRegistry
from entrasync.emulator.objects import ALL_USER_PROPERTIES, GLOBAL_ADMIN_ROLE, GROUP_PROPERTIES, User
from entrasync.emulator.state import EmulatorState
from entrasync.emulator.store import NotFound, Tenant
from entrasync.emulator.tenants import TenantState

Endpoint = Callable[[Request], Awaitable[Response]]


def json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status, media_type="application/json")


def error(status: int, message: str) -> Response:
    return json({"error": message}, status)


def user_record(user: User) -> dict[str, Any]:
    row = user.as_dict(ALL_USER_PROPERTIES)
    row.update(user.extensions())
    row["managerId"] = user._manager
    row["deletedDateTime"] = user.deletedDateTime
    return row


async def body_of(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def guard(fn: Endpoint) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        try:
            return await fn(request)
        except NotFound as exc:
            return error(404, f"not found: {exc.args[0]}")
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            return error(400, str(exc))

    return endpoint


def fault_endpoint(registry: Callable[[Request], FaultRegistry]) -> Endpoint:
    async def faults(request: Request) -> Response:
        reg = registry(request)
        if request.method == "DELETE":
            reg.clear()
            return Response(status_code=204)
        if request.method == "GET":
            return json(reg.pending())
        body = await body_of(request)
        kind = str(body.get("kind"))
        if kind not in FAULT_KINDS:
            return error(400, f"kind must be one of {', '.join(FAULT_KINDS)}")
        ra = body.get("retry_after")
        reg.add(
            Fault(
                path=str(body.get("path", "*")),
                kind=kind,
                count=int(body.get("count", 1)),
                retry_after=None if ra is None else str(ra),
                delay=float(body.get("delay") or 0.0),
            )
        )
        return json(reg.pending(), 201)

    return guard(faults)


def tenant_routes(state: EmulatorState) -> list[Route]:
    """The per-tenant admin routes; ``{tid}`` in the mount's path picks the tenant, else the default."""

    def ts_of(request: Request) -> TenantState:
        tid = request.path_params.get("tid")
        if tid is None:
            return state.default
        ts = state.tenants.get(tid) or state.tenants.resolve(tid)
        if ts is None:
            raise NotFound(f"tenant {tid}")
        return ts

    def tenant_of(request: Request) -> Tenant:
        return ts_of(request).store

    def user_of(request: Request) -> User:
        tenant = tenant_of(request)
        uid = request.path_params["id"]
        user = tenant.find_user(uid) or tenant.deleted_users.get(uid)
        if user is None:
            raise NotFound(uid)
        return user

    async def summary(request: Request) -> Response:
        ts = ts_of(request)
        tenant = ts.store
        admins = []
        for uid in tenant.admins:
            user = tenant.users.get(uid)
            if user is not None:
                admins.append(
                    {
                        "id": uid,
                        "displayName": user.displayName,
                        "userPrincipalName": user.userPrincipalName,
                        "globalAdministrator": GLOBAL_ADMIN_ROLE in user.wids,
                        "wids": list(user.wids),
                    }
                )
        return json(
            {
                "tenantId": tenant.tenant_id,
                "displayName": tenant.display_name,
                "domain": tenant.domain,
                "initialDomain": tenant.initial_domain,
                "userCount": len(tenant.users),
                "deletedUserCount": len(tenant.deleted_users),
                "admins": admins,
                "departments": tenant.departments,
                "groups": [
                    {"id": g.id, "displayName": g.displayName, "memberCount": len(g.members)}
                    for g in tenant.groups.values()
                ],
                "devices": [{"id": d.id, "displayName": d.displayName} for d in tenant.devices.values()],
                "contacts": [{"id": c.id, "displayName": c.displayName} for c in tenant.contacts.values()],
                "clientId": state.client_id,
                "appRoles": ts.app_roles,
                "consented": ts.consented,
                "extensionApp": tenant.extension_app,
                "extensionProperties": [p["name"] for p in tenant.extension_properties],
                "changeSeq": tenant.seq,
            }
        )

    async def list_users(request: Request) -> Response:
        return json([user_record(u) for u in tenant_of(request).live_users()])

    async def list_deleted(request: Request) -> Response:
        return json([user_record(u) for u in tenant_of(request).deleted_users.values()])

    async def create_user(request: Request) -> Response:
        return json(user_record(tenant_of(request).create_user(await body_of(request))), 201)

    async def get_user(request: Request) -> Response:
        return json(user_record(user_of(request)))

    async def patch_user(request: Request) -> Response:
        return json(user_record(tenant_of(request).update_user(request.path_params["id"], await body_of(request))))

    async def delete_user(request: Request) -> Response:
        tenant = tenant_of(request)
        if request.query_params.get("mode", "soft") == "hard":
            tenant.hard_delete_user(request.path_params["id"])
        else:
            tenant.soft_delete_user(request.path_params["id"])
        return Response(status_code=204)

    async def disable(request: Request) -> Response:
        return json(user_record(tenant_of(request).update_user(request.path_params["id"], {"accountEnabled": False})))

    async def enable(request: Request) -> Response:
        return json(user_record(tenant_of(request).update_user(request.path_params["id"], {"accountEnabled": True})))

    async def soft_delete(request: Request) -> Response:
        tenant_of(request).soft_delete_user(request.path_params["id"])
        return Response(status_code=204)

    async def hard_delete(request: Request) -> Response:
        tenant_of(request).hard_delete_user(request.path_params["id"])
        return Response(status_code=204)

    async def restore(request: Request) -> Response:
        return json(user_record(tenant_of(request).restore_user(request.path_params["id"])))

    async def manager(request: Request) -> Response:
        body = await body_of(request)
        tenant_of(request).set_manager(request.path_params["id"], body.get("managerId", body.get("manager_id")))
        return json(user_record(user_of(request)))

    async def create_group(request: Request) -> Response:
        group = tenant_of(request).create_group(await body_of(request))
        return json({**{p: group.get(p) for p in GROUP_PROPERTIES}, "members": list(group.members)}, 201)

    async def get_group(request: Request) -> Response:
        group = tenant_of(request).groups.get(request.path_params["id"])
        if group is None:
            raise NotFound(request.path_params["id"])
        return json({**{p: group.get(p) for p in GROUP_PROPERTIES}, "members": list(group.members)})

    async def add_member(request: Request) -> Response:
        body = await body_of(request)
        tenant_of(request).add_member(request.path_params["id"], str(body.get("memberId", body.get("member_id"))))
        return Response(status_code=204)

    async def remove_member(request: Request) -> Response:
        tenant_of(request).remove_member(request.path_params["id"], request.path_params["member"])
        return Response(status_code=204)

    async def extension_properties(request: Request) -> Response:
        tenant = tenant_of(request)
        if request.method == "POST":
            body = await body_of(request)
            name = str(body.get("name") or "")
            if not name.isidentifier():
                return error(400, "name must be a plain identifier, e.g. costCenter")
            return json(tenant.register_extension(name, str(body.get("dataType", "String"))), 201)
        return json({"app": tenant.extension_app, "value": tenant.extension_properties})

    async def expire(request: Request) -> Response:
        ts = ts_of(request)
        body = await body_of(request)
        mode = str(body.get("mode", ts.delta_expiry_mode))
        if mode not in ("400", "410"):
            return error(400, "mode must be '400' or '410'")
        ts.delta_expiry_mode = mode
        tenant = ts.store
        with tenant.lock:
            tenant.delta_epoch += 1
        return json({"epoch": tenant.delta_epoch, "mode": mode})

    async def counters(request: Request) -> Response:
        ts = ts_of(request)
        if request.method == "DELETE":
            ts.counters.clear()
            return Response(status_code=204)
        return json(dict(ts.counters))

    async def permissions(request: Request) -> Response:
        ts = ts_of(request)
        if request.method == "PUT":
            roles = (await body_of(request)).get("roles")
            if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
                return error(400, "roles must be a list of permission names")
            ts.app_roles = list(roles)
            state.forget_tokens()
        return json({"roles": ts.app_roles})

    async def consent(request: Request) -> Response:
        ts = ts_of(request)
        if request.method == "PUT":
            value = (await body_of(request)).get("consented")
            if not isinstance(value, bool):
                return error(400, "consented must be true or false")
            ts.consented = value
        return json({"tenantId": ts.tenant_id, "consented": ts.consented})

    async def throttle(request: Request) -> Response:
        ts = ts_of(request)
        if request.method == "DELETE":
            ts.throttle.configure(0, ts.throttle.window)
        elif request.method == "PUT":
            body = await body_of(request)
            ts.throttle.configure(int(body.get("limit", 0)), float(body.get("window", 10)))
        return json(ts.throttle.describe())

    async def settings(request: Request) -> Response:
        ts = ts_of(request)
        if request.method == "PATCH":
            body = await body_of(request)
            if "delta_expiry_mode" in body:
                if str(body["delta_expiry_mode"]) not in ("400", "410"):
                    return error(400, "delta_expiry_mode must be '400' or '410'")
                ts.delta_expiry_mode = str(body["delta_expiry_mode"])
            if "delta_page_size" in body:
                ts.delta_page_size = max(1, int(body["delta_page_size"]))
            if "token_lifetime" in body:  # app-wide
                state.token_lifetime = int(body["token_lifetime"])
            if "redirect_uris" in body:  # app-wide
                state.redirect_uris = [str(u) for u in body["redirect_uris"]]
        return json(
            {
                "delta_expiry_mode": ts.delta_expiry_mode,
                "delta_page_size": ts.delta_page_size,
                "token_lifetime": state.token_lifetime,
                "redirect_uris": state.redirect_uris,
            }
        )

    async def app_token(request: Request) -> Response:
        ts = ts_of(request)
        body = await body_of(request)
        claims = {
            "aud": body.get("aud", "https://graph.microsoft.com"),
            "iss": state.issuer(ts.tenant_id),
            "tid": body.get("tid", ts.tenant_id),
            "appid": state.client_id,
            "roles": body.get("roles", ts.app_roles),
            "idtyp": "app",
        }
        lifetime = int(body.get("lifetime", state.token_lifetime))
        token = (
            state.sign(claims, lifetime=lifetime)
            if lifetime > 0
            else state.sign({**claims, "iat": 1, "nbf": 1, "exp": 2})
        )
        return json({"access_token": token})

    return [
        Route("/tenant", guard(summary)),
        Route("/users", guard(list_users)),
        Route("/users", guard(create_user), methods=["POST"]),
        Route("/deleted-users", guard(list_deleted)),
        Route("/users/{id}", guard(get_user)),
        Route("/users/{id}", guard(patch_user), methods=["PATCH"]),
        Route("/users/{id}", guard(delete_user), methods=["DELETE"]),
        Route("/users/{id}/disable", guard(disable), methods=["POST"]),
        Route("/users/{id}/enable", guard(enable), methods=["POST"]),
        Route("/users/{id}/soft-delete", guard(soft_delete), methods=["POST"]),
        Route("/users/{id}/hard-delete", guard(hard_delete), methods=["POST"]),
        Route("/users/{id}/restore", guard(restore), methods=["POST"]),
        Route("/users/{id}/manager", guard(manager), methods=["PUT"]),
        Route("/groups", guard(create_group), methods=["POST"]),
        Route("/groups/{id}", guard(get_group)),
        Route("/groups/{id}/members", guard(add_member), methods=["POST"]),
        Route("/groups/{id}/members/{member}", guard(remove_member), methods=["DELETE"]),
        Route("/extension-properties", guard(extension_properties), methods=["GET", "POST"]),
        Route("/faults", fault_endpoint(lambda r: ts_of(r).faults), methods=["GET", "POST", "DELETE"]),
        Route("/delta/expire", guard(expire), methods=["POST"]),
        Route("/counters", guard(counters), methods=["GET", "DELETE"]),
        Route("/permissions", guard(permissions), methods=["GET", "PUT"]),
        Route("/consent", guard(consent), methods=["GET", "PUT"]),
        Route("/throttle", guard(throttle), methods=["GET", "PUT", "DELETE"]),
        Route("/settings", guard(settings), methods=["GET", "PATCH"]),
        Route("/tokens/app", guard(app_token), methods=["POST"]),
    ]
