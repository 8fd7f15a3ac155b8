"""The emulator's admin API (JSON, no auth, loopback only): drive joiners, movers, leavers and faults.

Documented for humans in ADMIN_API.md. Every change goes through :class:`Tenant` methods, so it is
visible to list, member and delta reads exactly as Graph would show it.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from entrasync.emulator.faults import FAULT_KINDS, Fault
from entrasync.emulator.state import EmulatorState
from entrasync.emulator.store import ALL_USER_PROPERTIES, GLOBAL_ADMIN_ROLE, GROUP_PROPERTIES, NotFound, User


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status, media_type="application/json")


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


def user_record(user: User) -> dict[str, Any]:
    row = user.as_dict(ALL_USER_PROPERTIES)
    row["managerId"] = user._manager
    row["deletedDateTime"] = user.deletedDateTime
    return row


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def admin_routes(state: EmulatorState) -> list[Route]:
    tenant = state.tenant

    def guard(fn: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                result: Response = await fn(request)
                return result
            except NotFound as exc:
                return _error(404, f"not found: {exc.args[0]}")
            except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
                return _error(400, str(exc))

        return endpoint

    async def summary(request: Request) -> Response:
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
        return _json(
            {
                "tenantId": tenant.tenant_id,
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
                "appRoles": state.app_roles,
                "changeSeq": tenant.seq,
            }
        )

    async def list_users(request: Request) -> Response:
        return _json([user_record(u) for u in tenant.live_users()])

    async def list_deleted(request: Request) -> Response:
        return _json([user_record(u) for u in tenant.deleted_users.values()])

    async def create_user(request: Request) -> Response:
        return _json(user_record(tenant.create_user(await _body(request))), 201)

    def _user(request: Request) -> User:
        uid = request.path_params["id"]
        user = tenant.find_user(uid) or tenant.deleted_users.get(uid)
        if user is None:
            raise NotFound(uid)
        return user

    async def get_user(request: Request) -> Response:
        return _json(user_record(_user(request)))

    async def patch_user(request: Request) -> Response:
        return _json(user_record(tenant.update_user(request.path_params["id"], await _body(request))))

    async def delete_user(request: Request) -> Response:
        mode = request.query_params.get("mode", "soft")
        if mode == "hard":
            tenant.hard_delete_user(request.path_params["id"])
        else:
            tenant.soft_delete_user(request.path_params["id"])
        return Response(status_code=204)

    async def disable(request: Request) -> Response:
        return _json(user_record(tenant.update_user(request.path_params["id"], {"accountEnabled": False})))

    async def enable(request: Request) -> Response:
        return _json(user_record(tenant.update_user(request.path_params["id"], {"accountEnabled": True})))

    async def soft_delete(request: Request) -> Response:
        tenant.soft_delete_user(request.path_params["id"])
        return Response(status_code=204)

    async def hard_delete(request: Request) -> Response:
        tenant.hard_delete_user(request.path_params["id"])
        return Response(status_code=204)

    async def restore(request: Request) -> Response:
        return _json(user_record(tenant.restore_user(request.path_params["id"])))

    async def manager(request: Request) -> Response:
        body = await _body(request)
        mid = body.get("managerId", body.get("manager_id"))
        tenant.set_manager(request.path_params["id"], mid)
        return _json(user_record(_user(request)))

    async def create_group(request: Request) -> Response:
        group = tenant.create_group(await _body(request))
        return _json({**{p: group.get(p) for p in GROUP_PROPERTIES}, "members": list(group.members)}, 201)

    async def get_group(request: Request) -> Response:
        group = tenant.groups.get(request.path_params["id"])
        if group is None:
            raise NotFound(request.path_params["id"])
        return _json({**{p: group.get(p) for p in GROUP_PROPERTIES}, "members": list(group.members)})

    async def add_member(request: Request) -> Response:
        body = await _body(request)
        tenant.add_member(request.path_params["id"], str(body.get("memberId", body.get("member_id"))))
        return Response(status_code=204)

    async def remove_member(request: Request) -> Response:
        tenant.remove_member(request.path_params["id"], request.path_params["member"])
        return Response(status_code=204)

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            state.faults.clear()
            return Response(status_code=204)
        if request.method == "GET":
            return _json(state.faults.pending())
        body = await _body(request)
        kind = str(body.get("kind"))
        if kind not in FAULT_KINDS:
            return _error(400, f"kind must be one of {', '.join(FAULT_KINDS)}")
        ra = body.get("retry_after")
        state.faults.add(
            Fault(
                path=str(body.get("path", "*")),
                kind=kind,
                count=int(body.get("count", 1)),
                retry_after=None if ra is None else str(ra),
                delay=float(body.get("delay") or 0.0),
            )
        )
        return _json(state.faults.pending(), 201)

    async def expire(request: Request) -> Response:
        body = await _body(request)
        mode = str(body.get("mode", state.delta_expiry_mode))
        if mode not in ("400", "410"):
            return _error(400, "mode must be '400' or '410'")
        state.delta_expiry_mode = mode
        with tenant.lock:
            tenant.delta_epoch += 1
        return _json({"epoch": tenant.delta_epoch, "mode": mode})

    async def counters(request: Request) -> Response:
        if request.method == "DELETE":
            state.counters.clear()
            return Response(status_code=204)
        return _json(dict(state.counters))

    async def permissions(request: Request) -> Response:
        if request.method == "PUT":
            roles = (await _body(request)).get("roles")
            if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
                return _error(400, "roles must be a list of permission names")
            state.app_roles = list(roles)
            state.forget_tokens()
        return _json({"roles": state.app_roles})

    async def settings(request: Request) -> Response:
        if request.method == "PATCH":
            body = await _body(request)
            if "delta_expiry_mode" in body:
                if str(body["delta_expiry_mode"]) not in ("400", "410"):
                    return _error(400, "delta_expiry_mode must be '400' or '410'")
                state.delta_expiry_mode = str(body["delta_expiry_mode"])
            if "delta_page_size" in body:
                state.delta_page_size = max(1, int(body["delta_page_size"]))
            if "token_lifetime" in body:
                state.token_lifetime = int(body["token_lifetime"])
            if "redirect_uris" in body:
                state.redirect_uris = [str(u) for u in body["redirect_uris"]]
        return _json(
            {
                "delta_expiry_mode": state.delta_expiry_mode,
                "delta_page_size": state.delta_page_size,
                "token_lifetime": state.token_lifetime,
                "redirect_uris": state.redirect_uris,
            }
        )

    async def app_token(request: Request) -> Response:
        body = await _body(request)
        claims = {
            "aud": body.get("aud", "https://graph.microsoft.com"),
            "iss": state.issuer(),
            "tid": body.get("tid", tenant.tenant_id),
            "appid": state.client_id,
            "roles": body.get("roles", state.app_roles),
            "idtyp": "app",
        }
        lifetime = int(body.get("lifetime", state.token_lifetime))
        token = (
            state.sign(claims, lifetime=lifetime)
            if lifetime > 0
            else state.sign({**claims, "iat": 1, "nbf": 1, "exp": 2})
        )
        return _json({"access_token": token})

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
        Route("/faults", guard(faults), methods=["GET", "POST", "DELETE"]),
        Route("/delta/expire", guard(expire), methods=["POST"]),
        Route("/counters", guard(counters), methods=["GET", "DELETE"]),
        Route("/permissions", guard(permissions), methods=["GET", "PUT"]),
        Route("/settings", guard(settings), methods=["GET", "PATCH"]),
        Route("/tokens/app", guard(app_token), methods=["POST"]),
    ]
