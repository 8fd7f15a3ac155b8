"""A small httpx client for the emulator's admin API (used by tests and by ``entrasync demo``).

``trust_env=False`` so REQUESTS_CA_BUNDLE-style variables cannot override the emulator's CA.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx


class AdminClient:
    def __init__(self, admin_url: str, ca_bundle: str, timeout: float = 30.0) -> None:
        self._http = httpx.Client(
            base_url=admin_url.rstrip("/"),
            verify=ssl.create_default_context(cafile=ca_bundle),
            trust_env=False,
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, json: Any = None, params: dict[str, str] | None = None) -> Any:
        response = self._http.request(method, path, json=json, params=params)
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
