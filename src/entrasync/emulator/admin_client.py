"""A small httpx client for the emulator's admin API (used by tests and by ``entrasync demo``).

``trust_env=False`` so REQUESTS_CA_BUNDLE-style variables cannot override the emulator's CA.
``AdminClient(url, ca, tenant=tid)`` (or ``client.for_tenant(tid)``) drives one tenant of a
multi-tenant emulator (``/_emulator/tenants/{tid}/...``); without it, the default tenant.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx


class AdminClient:
    def __init__(
        self,
        admin_url: str,
        ca_bundle: str,
        timeout: float = 30.0,
        tenant: str | None = None,
        _http: httpx.Client | None = None,
    ) -> None:
        self._owns = _http is None
        self._http = _http or httpx.Client(
            base_url=admin_url.rstrip("/"),
            verify=ssl.create_default_context(cafile=ca_bundle),
            trust_env=False,
            timeout=timeout,
        )
        self._admin_url, self._ca_bundle = admin_url, ca_bundle
        self.tenant = tenant
        self._prefix = f"/tenants/{tenant}" if tenant else ""

    def for_tenant(self, tenant_id: str) -> AdminClient:
        """The same API for another tenant, sharing this client's connections (closing it is a no-op)."""
        return AdminClient(self._admin_url, self._ca_bundle, tenant=tenant_id, _http=self._http)

    def close(self) -> None:
        if self._owns:
            self._http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self, method: str, path: str, json: Any = None, params: dict[str, str] | None = None, scoped: bool = True
    ) -> Any:
        response = self._http.request(method, (self._prefix if scoped else "") + path, json=json, params=params)
        if response.status_code >= 400:
            raise RuntimeError(f"emulator admin {method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    # users
    def create_user(self, **props: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/users", props)
        return result

    def get_user(self, user_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/users/{user_id}")
        return result

    def update_user(self, user_id: str, **props: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PATCH", f"/users/{user_id}", props)
        return result

    def disable_user(self, user_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/users/{user_id}/disable")
        return result

    def enable_user(self, user_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/users/{user_id}/enable")
        return result

    def soft_delete_user(self, user_id: str) -> None:
        self._call("POST", f"/users/{user_id}/soft-delete")

    def hard_delete_user(self, user_id: str) -> None:
        self._call("POST", f"/users/{user_id}/hard-delete")

    def restore_user(self, user_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/users/{user_id}/restore")
        return result

    def set_manager(self, user_id: str, manager_id: str | None) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PUT", f"/users/{user_id}/manager", {"managerId": manager_id})
        return result

    def list_users(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/users")
        return result

    def list_deleted_users(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/deleted-users")
        return result

    # groups
    def create_group(self, display_name: str, members: list[str] | None = None, **props: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", "/groups", {"displayName": display_name, "members": members or [], **props}
        )
        return result

    def get_group(self, group_id: str) -> dict[str, Any]:
        """A group's properties and its direct member ids."""
        result: dict[str, Any] = self._call("GET", f"/groups/{group_id}")
        return result

    def add_member(self, group_id: str, member_id: str) -> None:
        self._call("POST", f"/groups/{group_id}/members", {"memberId": member_id})

    def remove_member(self, group_id: str, member_id: str) -> None:
        self._call("DELETE", f"/groups/{group_id}/members/{member_id}")

    # faults, delta, counters, settings
    def inject_fault(
        self,
        path_pattern: str,
        kind: str,
        count: int = 1,
        retry_after: str | float | None = None,
        delay: float | None = None,
    ) -> None:
        self._call(
            "POST",
            "/faults",
            {
                "path": path_pattern,
                "kind": kind,
                "count": count,
                "retry_after": None if retry_after is None else str(retry_after),
                "delay": delay,
            },
        )

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def expire_delta_tokens(self, mode: str = "400") -> None:
        self._call("POST", "/delta/expire", {"mode": mode})

    def counters(self) -> dict[str, int]:
        result: dict[str, int] = self._call("GET", "/counters")
        return result

    def reset_counters(self) -> None:
        self._call("DELETE", "/counters")

    def tenant_summary(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/tenant")
        return result

    def set_app_permissions(self, roles: list[str]) -> None:
        self._call("PUT", "/permissions", {"roles": roles})

    def settings(self, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PATCH" if changes else "GET", "/settings", changes or None)
        return result

    def mint_app_token(self, **claims: Any) -> str:
        """A Graph token with chosen claims (``lifetime`` <= 0 gives an expired one): for negative tests."""
        result: dict[str, Any] = self._call("POST", "/tokens/app", claims)
        return str(result["access_token"])

    # consent, throttling, directory extensions (this client's tenant)
    def set_consent(self, consented: bool) -> None:
        """Grant or revoke the app's admin consent in this tenant (no consent: tokens are refused)."""
        self._call("PUT", "/consent", {"consented": consented})

    def consent(self) -> bool:
        result: dict[str, Any] = self._call("GET", "/consent")
        return bool(result["consented"])

    def set_throttle(self, limit: int, window: float = 10.0) -> None:
        """At most ``limit`` Graph requests per ``window`` seconds in this tenant, then 429 (0 = off)."""
        self._call("PUT", "/throttle", {"limit": limit, "window": window})

    def clear_throttle(self) -> None:
        self._call("DELETE", "/throttle")

    def extension_properties(self) -> list[dict[str, Any]]:
        """The tenant's directory extension definitions (``name`` is ``extension_{appId}_{short}``)."""
        result: dict[str, Any] = self._call("GET", "/extension-properties")
        return list(result["value"])

    def register_extension(self, name: str, data_type: str = "String") -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/extension-properties", {"name": name, "dataType": data_type})
        return result

    # the whole emulator (not scoped to a tenant)
    def tenants(self) -> list[dict[str, Any]]:
        """Every tenant: id, names, size, whether generated and consented, admin URL."""
        result: dict[str, Any] = self._call("GET", "/tenants", scoped=False)
        return list(result["value"])

    def inject_app_fault(
        self, path_pattern: str, kind: str, count: int = 1, retry_after: str | float | None = None
    ) -> None:
        """A fault for the next ``count`` matching requests of any tenant (the app-wide registry)."""
        body = {"path": path_pattern, "kind": kind, "count": count}
        body["retry_after"] = None if retry_after is None else str(retry_after)
        self._call("POST", "/app/faults", body, scoped=False)

    def clear_app_faults(self) -> None:
        self._call("DELETE", "/app/faults", scoped=False)

    def set_app_throttle(self, limit: int, window: float = 20.0) -> None:
        """One budget for the app across all tenants (Graph's per-app limit), then 429 (0 = off)."""
        self._call("PUT", "/app/throttle", {"limit": limit, "window": window}, scoped=False)

    def app_counters(self) -> dict[str, int]:
        """Requests per ``"METHOD /path"`` summed over every tenant."""
        result: dict[str, int] = self._call("GET", "/app/counters", scoped=False)
        return result
