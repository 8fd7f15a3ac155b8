"""Microsoft identity platform pages: OIDC discovery, JWKS, authorize (a sign-in page), admin consent;
the token endpoint is :mod:`entrasync.emulator.identity_token`. Protocol details follow:
- https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc
- https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow (PKCE S256)
- https://learn.microsoft.com/entra/identity-platform/v2-admin-consent
- https://learn.microsoft.com/entra/identity-platform/howto-convert-app-to-be-multi-tenant (``organizations``)

``/{tenant}/...`` accepts a tenant id or one of its domains. With ``common`` or ``organizations`` the
sign-in page shows the default tenant's accounts and, when the emulator serves several tenants, an
organization chooser; the ID token and the consent redirect then name the tenant the account is in.
"""

from __future__ import annotations

import secrets
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from entrasync.emulator.identity_token import ANY_TENANT, JWT_BEARER, TokenEndpoint, oauth_error, tenant_not_found
from entrasync.emulator.objects import GLOBAL_ADMIN_ROLE, User
from entrasync.emulator.state import GRAPH_AUDIENCE, AuthCode, EmulatorState
from entrasync.emulator.tenants import TenantState

__all__ = ["JWT_BEARER", "Identity"]

TEMPLATES = Environment(
    loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=select_autoescape(["html"]),
)
PERMISSION_TEXT = {
    "User.Read.All": "Read all users' full profiles (to sync people, their managers and departments)",
    "GroupMember.Read.All": "Read all group memberships (for the group filter, nested groups included)",
    "Group.Read.All": "Read all groups",
    "Directory.Read.All": "Read directory data",
    "User.ReadWrite.All": "Read and write all users' full profiles",
}
CHOOSER = "login_tenant"  # form field of the organization chooser (common / organizations only)
_CLAIMS = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "acr",
    "nonce",
    "preferred_username",
    "name",
    "tid",
    "ver",
    "at_hash",
    "c_hash",
    "email",
]


class Identity:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.tokens = TokenEndpoint(state)
        self.token = self.tokens.handle

    # -- helpers ---------------------------------------------------------------------------------
    def _tenant(self, alias: str) -> TenantState | None:
        return self.state.default if alias.lower() in ANY_TENANT else self.state.tenants.resolve(alias)

    def _page(self, template: str, ts: TenantState, status: int = 200, **ctx: Any) -> HTMLResponse:
        html = TEMPLATES.get_template(template).render(tenant_name=ts.profile.initial_domain, **ctx)
        return HTMLResponse(html, status, headers={"Cache-Control": "no-store"})

    def _redirect_ok(self, uri: str) -> bool:
        """Loopback on any port (as Entra allows for native/dev apps), or a registered URI."""
        if uri in self.state.redirect_uris:
            return True
        parts = urlsplit(uri)
        return parts.scheme in ("http", "https") and parts.hostname in ("localhost", "127.0.0.1", "::1")

    def _accounts(self, ts: TenantState) -> list[dict[str, str]]:
        tenant = ts.store
        out = []
        for uid in tenant.admins:
            user = tenant.users.get(uid)
            if user is not None:
                role = "Global Administrator" if GLOBAL_ADMIN_ROLE in user.wids else "User"
                out.append({"id": uid, "name": user.displayName or "", "role": role, "upn": user.userPrincipalName})
        return out

    def _front_channel_check(self, params: dict[str, str], ts: TenantState) -> Response | None:
        if params.get("client_id") != self.state.client_id:
            return self._page(
                "error.html",
                ts,
                400,
                title="Error",
                message=f"AADSTS700016: Application with identifier "
                f"'{params.get('client_id')}' was not found in the directory.",
            )
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri or not self._redirect_ok(redirect_uri):
            return self._page(
                "error.html",
                ts,
                400,
                title="Error",
                message="AADSTS50011: The redirect URI "
                f"'{redirect_uri}' specified in the request does not match the redirect URIs "
                "configured for the application.",
            )
        return None

    def _signing_in(self, alias: str, params: dict[str, str]) -> tuple[TenantState | None, bool]:
        """The tenant whose accounts to show (chosen on the page for common/organizations) and
        whether to offer the organization chooser."""
        if alias.lower() not in ANY_TENANT:
            return self.state.tenants.resolve(alias), False
        chosen = self.state.tenants.get(params.get(CHOOSER, "")) if params.get(CHOOSER) else None
        return chosen or self.state.default, self.state.tenants.multi

    def _signin_page(
        self, request: Request, ts: TenantState, chooser: bool, params: dict[str, str], purpose: str
    ) -> Response:
        hidden = [(k, v) for k, v in params.items() if k not in ("account", "switch")]
        if chooser and CHOOSER not in params:
            hidden.append((CHOOSER, ts.tenant_id))
        tenants = []
        if chooser:
            tenants = [
                {"id": t.tenant_id, "name": t.profile.company, "domain": t.profile.domain, "selected": t is ts}
                for t in self.state.tenants
            ]
        return self._page(
            "signin.html",
            ts,
            title="Sign in",
            action=request.url.path,
            hidden=hidden,
            chooser_hidden=[(k, v) for k, v in hidden if k != CHOOSER],
            accounts=self._accounts(ts),
            tenants=tenants,
            chooser_field=CHOOSER,
            purpose=purpose,
        )

    async def _params(self, request: Request) -> dict[str, str]:
        params = dict(request.query_params)
        if request.method == "POST":
            form = await request.form()
            params.update({k: str(v) for k, v in form.items()})
        return params

    # -- discovery -------------------------------------------------------------------------------
    async def openid_configuration(self, request: Request) -> Response:
        alias = request.path_params["tenant"]
        ts = self._tenant(alias)
        if ts is None:
            return oauth_error(self.state, 400, "invalid_tenant", 90002, tenant_not_found(alias))
        base = self.state.base_url
        any_tenant = alias.lower() in ANY_TENANT
        path_tenant = alias if any_tenant else ts.tenant_id
        issuer = f"{base}/{{tenantid}}/v2.0" if any_tenant else self.state.issuer(ts.tenant_id)
        host = urlsplit(base).netloc
        doc = {
            "token_endpoint": f"{base}/{path_tenant}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/{path_tenant}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": issuer,
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{GRAPH_AUDIENCE}/oidc/userinfo",
            "authorization_endpoint": f"{base}/{path_tenant}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/{path_tenant}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/{path_tenant}/oauth2/v2.0/logout",
            "claims_supported": _CLAIMS,
            "code_challenge_methods_supported": ["plain", "S256"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": host,
            "cloud_graph_host_name": host,
            "msgraph_host": host,
        }
        return Response(orjson.dumps(doc), media_type="application/json; charset=utf-8")

    async def jwks(self, request: Request) -> Response:
        ts = self.state.tenants.resolve(request.path_params["tenant"])
        keys = self.state.jwks(ts.tenant_id if ts is not None else "{tenantid}")
        return Response(orjson.dumps(keys), media_type="application/json; charset=utf-8")

    # -- authorize ---------------------------------------------------------------------------------
    async def authorize(self, request: Request) -> Response:
        params = await self._params(request)
        alias = request.path_params["tenant"]
        ts, chooser = self._signing_in(alias, params)
        if ts is None:
            return self._page(
                "error.html", self.state.default, 400, title="Error", message=f"AADSTS90002: {tenant_not_found(alias)}"
            )
        bad = self._front_channel_check(params, ts)
        if bad is not None:
            return bad
        redirect_uri = params["redirect_uri"]
        mode = params.get("response_mode", "query")
        if params.get("response_type", "code") != "code":
            return self._respond(
                redirect_uri,
                mode,
                ts,
                {
                    "error": "unsupported_response_type",
                    "error_description": "AADSTS700054: response_type is not enabled for the application.",
                    "state": params.get("state", ""),
                },
            )
        method = params.get("code_challenge_method")
        if params.get("code_challenge") and method not in (None, "S256", "plain"):
            return self._respond(
                redirect_uri,
                mode,
                ts,
                {
                    "error": "invalid_request",
                    "error_description": "AADSTS501491: Invalid code_challenge_method.",
                    "state": params.get("state", ""),
                },
            )
        if params.get("decision") == "cancel" and not params.get("account"):
            cancelled = {k: v for k, v in _cancelled(params.get("state")).items() if v is not None}
            return self._respond(redirect_uri, mode, ts, cancelled)
        account = params.get("account")
        user = ts.store.users.get(account) if account and "switch" not in params else None
        if user is None:
            return self._signin_page(request, ts, chooser, params, "Sign in to continue to the application.")
        code = secrets.token_urlsafe(32)
        self.state.auth_codes[code] = AuthCode(
            client_id=params["client_id"],
            redirect_uri=redirect_uri,
            scope=params.get("scope", "openid"),
            user_id=user.id,
            nonce=params.get("nonce"),
            code_challenge=params.get("code_challenge"),
            code_challenge_method=method or ("plain" if params.get("code_challenge") else None),
            expires=time.time() + 600,
            tenant_id=ts.tenant_id,
        )
        out = {"code": code, "session_state": str(uuid.uuid4())}
        if "state" in params:
            out["state"] = params["state"]
        return self._respond(redirect_uri, mode, ts, out)

    def _respond(self, redirect_uri: str, mode: str, ts: TenantState, fields: dict[str, str]) -> Response:
        if mode == "form_post":
            return self._page("form_post.html", ts, title="Working", action=redirect_uri, fields=list(fields.items()))
        sep = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
        return RedirectResponse(redirect_uri + sep + urlencode(fields), status_code=302)

    # -- admin consent -----------------------------------------------------------------------------
    async def adminconsent(self, request: Request) -> Response:
        params = await self._params(request)
        alias = request.path_params["tenant"]
        ts, chooser = self._signing_in(alias, params)
        if ts is None:
            return self._page(
                "error.html", self.state.default, 400, title="Error", message=f"AADSTS90002: {tenant_not_found(alias)}"
            )
        bad = self._front_channel_check(params, ts)
        if bad is not None:
            return bad
        redirect_uri = params["redirect_uri"]
        state = params.get("state")
        account = params.pop("account", None)
        decision = params.pop("decision", None)
        user: User | None = ts.store.users.get(account) if account and "switch" not in params else None
        if user is None and decision == "cancel":  # Cancel on the sign-in page
            return self._consent_redirect(redirect_uri, _cancelled(state))
        if user is None:
            purpose = "Sign in with an administrator account to grant consent."
            return self._signin_page(request, ts, chooser, params, purpose)
        hidden = [(k, v) for k, v in params.items() if k != "switch"]
        if GLOBAL_ADMIN_ROLE not in user.wids:
            # Only an administrator can grant tenant-wide consent (v2-admin-consent "Error response").
            return self._consent_redirect(
                redirect_uri,
                {
                    "error": "permission_denied",
                    "error_description": "AADSTS90093: This operation can only be performed by an administrator. "
                    "Sign out and sign in as an administrator or contact one of your "
                    "organization's administrators.",
                    "state": state,
                },
            )
        if decision is None:
            perms = [{"name": p, "description": PERMISSION_TEXT.get(p, p)} for p in ts.app_roles]
            return self._page(
                "consent.html",
                ts,
                title="Permissions requested",
                action=request.url.path,
                hidden=[*hidden, ("account", user.id)],
                account_name=user.displayName,
                app_name="entrasync",
                permissions=perms,
            )
        if decision != "accept":
            return self._consent_redirect(redirect_uri, _cancelled(state))
        ts.consented = True
        fields = {"tenant": ts.tenant_id, "state": state, "admin_consent": "True"}
        if params.get("scope"):
            fields["scope"] = params["scope"]
        return self._consent_redirect(redirect_uri, fields)

    def _consent_redirect(self, redirect_uri: str, fields: dict[str, str | None]) -> Response:
        clean = {k: v for k, v in fields.items() if v is not None}
        sep = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(redirect_uri + sep + urlencode(clean), status_code=302)


def _cancelled(state: str | None) -> dict[str, str | None]:
    """What Microsoft redirects with when the person presses Cancel (sign-in or consent page)."""
    return {
        "error": "access_denied",
        "error_subcode": "cancel",
        "error_description": "AADSTS65004: User declined to consent to access the app.",
        "state": state,
    }
