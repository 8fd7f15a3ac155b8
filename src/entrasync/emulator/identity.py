"""Microsoft identity platform endpoints: OIDC discovery, JWKS, authorize (a sign-in page), token,
and admin consent. Protocol details follow:
- https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc
- https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow (PKCE S256)
- https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
- https://learn.microsoft.com/entra/identity-platform/v2-admin-consent
- https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from entrasync.emulator.state import GRAPH_APP_ID, GRAPH_AUDIENCE, AuthCode, EmulatorState
from entrasync.emulator.store import GLOBAL_ADMIN_ROLE, User

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
OIDC_SCOPES = {"openid", "profile", "email", "offline_access"}


JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class Identity:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    # -- helpers ---------------------------------------------------------------------------------
    def _tenant_ok(self, alias: str) -> bool:
        t = self.state.tenant
        return alias.lower() in (t.tenant_id, "common", "organizations", t.domain, t.initial_domain)

    def _page(self, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        html = TEMPLATES.get_template(template).render(tenant_name=self.state.tenant.initial_domain, **ctx)
        return HTMLResponse(html, status, headers={"Cache-Control": "no-store"})

    def _oauth_error(self, status: int, error: str, code: int, description: str) -> Response:
        body = {
            "error": error,
            "error_description": f"AADSTS{code}: {description} Trace ID: {uuid.uuid4()} Correlation ID: "
            f"{uuid.uuid4()} Timestamp: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%SZ')}",
            "error_codes": [code],
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
            "error_uri": f"{self.state.base_url}/error?code={code}",
        }
        return Response(orjson.dumps(body), status, media_type="application/json; charset=utf-8")

    def _redirect_ok(self, uri: str) -> bool:
        """Loopback on any port (as Entra allows for native/dev apps), or a registered URI."""
        if uri in self.state.redirect_uris:
            return True
        parts = urlsplit(uri)
        return parts.scheme in ("http", "https") and parts.hostname in ("localhost", "127.0.0.1", "::1")

    def _accounts(self) -> list[dict[str, str]]:
        tenant = self.state.tenant
        out = []
        for uid in tenant.admins:
            user = tenant.users.get(uid)
            if user is not None:
                role = "Global Administrator" if GLOBAL_ADMIN_ROLE in user.wids else "User"
                out.append({"id": uid, "name": user.displayName or "", "role": role, "upn": user.userPrincipalName})
        return out

    def _front_channel_check(self, params: dict[str, str]) -> Response | None:
        if params.get("client_id") != self.state.client_id:
            return self._page(
                "error.html",
                400,
                title="Error",
                message=f"AADSTS700016: Application with identifier "
                f"'{params.get('client_id')}' was not found in the directory.",
            )
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri or not self._redirect_ok(redirect_uri):
            return self._page(
                "error.html",
                400,
                title="Error",
                message="AADSTS50011: The redirect URI "
                f"'{redirect_uri}' specified in the request does not match the redirect URIs "
                "configured for the application.",
            )
        return None

    # -- discovery -------------------------------------------------------------------------------
    async def openid_configuration(self, request: Request) -> Response:
        alias = request.path_params["tenant"]
        if not self._tenant_ok(alias):
            return self._oauth_error(400, "invalid_tenant", 90002, f"Tenant '{alias}' not found.")
        base = self.state.base_url
        tid = self.state.tenant.tenant_id
        path_tenant = alias if alias.lower() in ("common", "organizations") else tid
        issuer = f"{base}/{{tenantid}}/v2.0" if path_tenant != tid else self.state.issuer()
        doc = {
            "token_endpoint": f"{base}/{path_tenant}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
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
            "claims_supported": [
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
            ],
            "code_challenge_methods_supported": ["plain", "S256"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": urlsplit(base).netloc,
            "cloud_graph_host_name": urlsplit(base).netloc,
            "msgraph_host": urlsplit(base).netloc,
        }
        return Response(orjson.dumps(doc), media_type="application/json; charset=utf-8")

    async def jwks(self, request: Request) -> Response:
        return Response(orjson.dumps(self.state.jwks()), media_type="application/json; charset=utf-8")

    # -- authorize ---------------------------------------------------------------------------------
    async def authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        if request.method == "POST":
            form = await request.form()
            params.update({k: str(v) for k, v in form.items()})
        bad = self._front_channel_check(params)
        if bad is not None:
            return bad
        redirect_uri = params["redirect_uri"]
        mode = params.get("response_mode", "query")
        if params.get("response_type", "code") != "code":
            return self._respond(
                redirect_uri,
                mode,
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
                {
                    "error": "invalid_request",
                    "error_description": "AADSTS501491: Invalid code_challenge_method.",
                    "state": params.get("state", ""),
                },
            )
        account = params.pop("account", None)
        user = self.state.tenant.users.get(account) if account else None
        if user is None:
            hidden = [(k, v) for k, v in params.items() if k != "account"]
            return self._page(
                "signin.html",
                title="Sign in",
                action=request.url.path,
                hidden=hidden,
                accounts=self._accounts(),
                purpose="Sign in to continue to the application.",
            )
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
        )
        out = {"code": code, "session_state": str(uuid.uuid4())}
        if "state" in params:
            out["state"] = params["state"]
        return self._respond(redirect_uri, mode, out)

    def _respond(self, redirect_uri: str, mode: str, fields: dict[str, str]) -> Response:
        if mode == "form_post":
            return self._page("form_post.html", title="Working", action=redirect_uri, fields=list(fields.items()))
        sep = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
        return RedirectResponse(redirect_uri + sep + urlencode(fields), status_code=302)

    # -- token -------------------------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        client_id = form.get("client_id")
        secret = form.get("client_secret")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                cid, _, sec = base64.b64decode(auth[6:]).decode().partition(":")
                client_id, secret = client_id or cid, sec
            except ValueError:
                pass
        if client_id != self.state.client_id:
            return self._oauth_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory.",
            )
        assertion = form.get("client_assertion")
        if assertion is not None or form.get("client_assertion_type") is not None:
            refused = self._check_client_assertion(request, form, assertion)
            if refused is not None:
                return refused
        elif secret is None:
            return self._oauth_error(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        elif not secrets.compare_digest(secret, self.state.client_secret):
            return self._oauth_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the "
                "secret being sent in the request is the client secret value, not the client "
                "secret ID.",
            )
        grant = form.get("grant_type")
        if grant == "client_credentials":
            scope = form.get("scope", "")
            if scope.strip() not in (f"{GRAPH_AUDIENCE}/.default", f"{GRAPH_APP_ID}/.default"):
                return self._oauth_error(
                    400,
                    "invalid_scope",
                    1002012,
                    f"The provided value for scope {scope} is "
                    "not valid. Client credential flows must have a scope value with /.default "
                    "suffixed to the resource identifier (application ID URI).",
                )
            return self._token_json(
                {
                    "token_type": "Bearer",
                    "expires_in": self.state.token_lifetime,
                    "ext_expires_in": self.state.token_lifetime,
                    "access_token": self.state.app_token(),
                }
            )
        if grant == "authorization_code":
            return self._code_grant(form)
        return self._oauth_error(
            400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant}'."
        )

    def _check_client_assertion(self, request: Request, form: dict[str, str], assertion: str | None) -> Response | None:
        """A certificate credential: an RS256/PS256 JWT naming a registered certificate by thumbprint,
        with ``aud`` the token endpoint and ``iss`` = ``sub`` = the client id
        (https://learn.microsoft.com/entra/identity-platform/certificate-credentials)."""
        if form.get("client_assertion_type") != JWT_BEARER or not assertion:
            return self._oauth_error(
                400,
                "invalid_request",
                50027,
                f"Invalid client assertion: client_assertion_type must be '{JWT_BEARER}' and client_assertion a JWT.",
            )
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return self._oauth_error(400, "invalid_request", 50027, "JWT token is invalid or malformed.")
        alg = header.get("alg")
        thumbprint = str(header.get("x5t#S256") or header.get("x5t") or "").rstrip("=")  # padded or not
        key = self.state.app_certificate_keys.get(thumbprint)
        if alg not in ("RS256", "PS256") or key is None:
            return self._oauth_error(
                401,
                "invalid_client",
                700027,
                "Client assertion contains an invalid signature. [Reason - The key was not found., "
                f"Thumbprint of key used by client: '{thumbprint}']",
            )
        endpoint = str(request.url).split("?", 1)[0]
        try:
            claims = jwt.decode(
                assertion,
                key,
                algorithms=[alg],
                audience=endpoint,
                options={"require": ["exp", "aud", "iss", "sub"]},  # msal sends no nbf; Entra accepts that
                leeway=300,
            )
        except jwt.ExpiredSignatureError:
            return self._oauth_error(
                401, "invalid_client", 700024, "Client assertion is not within its valid time range."
            )
        except jwt.InvalidSignatureError:
            return self._oauth_error(401, "invalid_client", 700027, "Client assertion failed signature validation.")
        except jwt.PyJWTError as exc:
            return self._oauth_error(401, "invalid_client", 50027, f"Invalid client assertion: {exc}.")
        if claims.get("iss") != self.state.client_id or claims.get("sub") != self.state.client_id:
            return self._oauth_error(
                401,
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            )
        return None

    def _code_grant(self, form: dict[str, str]) -> Response:
        code = self.state.auth_codes.pop(form.get("code", ""), None)
        if code is None or code.expires < time.time():
            return self._oauth_error(
                400,
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token "
                "has expired due to inactivity or was already redeemed.",
            )
        if form.get("redirect_uri") != code.redirect_uri:
            return self._oauth_error(
                400,
                "invalid_grant",
                50148,
                "The redirect_uri does not match the one used in the authorization request.",
            )
        if code.code_challenge:
            verifier = form.get("code_verifier", "")
            if code.code_challenge_method == "S256":
                digest = hashlib.sha256(verifier.encode()).digest()
                computed = base64.urlsafe_b64encode(digest).decode().rstrip("=")
            else:
                computed = verifier
            if not verifier or not secrets.compare_digest(computed, code.code_challenge):
                return self._oauth_error(
                    400,
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                )
        user = self.state.tenant.users.get(code.user_id)
        if user is None:
            return self._oauth_error(400, "invalid_grant", 50034, "The user account does not exist.")
        scopes = code.scope.split()
        resource_scopes = [s.rsplit("/", 1)[-1] for s in scopes if s.lower() not in OIDC_SCOPES]
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(scopes),
            "expires_in": self.state.token_lifetime,
            "ext_expires_in": self.state.token_lifetime,
            "access_token": self.state.sign(
                {
                    "aud": GRAPH_AUDIENCE,
                    "iss": self.state.issuer(),
                    "tid": self.state.tenant.tenant_id,
                    "oid": user.id,
                    "sub": user.id,
                    "appid": code.client_id,
                    "scp": " ".join(resource_scopes or ["User.Read"]),
                    "upn": user.userPrincipalName,
                    "name": user.displayName,
                    "wids": list(user.wids),
                    "idtyp": "user",
                    "ver": "2.0",
                }
            ),
        }
        if "openid" in scopes:
            body["id_token"] = self.id_token(user, code.client_id, code.nonce)
        if "offline_access" in scopes:
            body["refresh_token"] = secrets.token_urlsafe(48)
        return self._token_json(body)

    def id_token(self, user: User, client_id: str, nonce: str | None) -> str:
        claims: dict[str, Any] = {
            "aud": client_id,
            "iss": self.state.issuer(),
            "tid": self.state.tenant.tenant_id,
            "oid": user.id,
            "sub": hashlib.sha256(f"{user.id}:{client_id}".encode()).hexdigest()[:43],
            "preferred_username": user.userPrincipalName,
            "name": user.displayName,
            "ver": "2.0",
            "wids": list(user.wids),
            "auth_time": int(time.time()),
        }
        if user.mail:
            claims["email"] = user.mail
        if nonce:
            claims["nonce"] = nonce
        return self.state.sign(claims)

    def _token_json(self, body: dict[str, Any]) -> Response:
        return Response(
            orjson.dumps(body),
            media_type="application/json; charset=utf-8",
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    # -- admin consent -----------------------------------------------------------------------------
    async def adminconsent(self, request: Request) -> Response:
        params = dict(request.query_params)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.form()).items()})
        bad = self._front_channel_check(params)
        if bad is not None:
            return bad
        redirect_uri = params["redirect_uri"]
        state = params.get("state")
        account = params.pop("account", None)
        decision = params.pop("decision", None)
        user = self.state.tenant.users.get(account) if account else None
        hidden = list(params.items())
        if user is None:
            return self._page(
                "signin.html",
                title="Sign in",
                action=request.url.path,
                hidden=hidden,
                accounts=self._accounts(),
                purpose="Sign in with an administrator account to grant consent.",
            )
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
            perms = [{"name": p, "description": PERMISSION_TEXT.get(p, p)} for p in self.state.app_roles]
            return self._page(
                "consent.html",
                title="Permissions requested",
                action=request.url.path,
                hidden=[*hidden, ("account", user.id)],
                account_name=user.displayName,
                app_name="entrasync",
                permissions=perms,
            )
        if decision != "accept":
            return self._consent_redirect(
                redirect_uri,
                {
                    "error": "access_denied",
                    "error_subcode": "cancel",
                    "error_description": "AADSTS65004: User declined to consent to access the app.",
                    "state": state,
                },
            )
        self.state.consented = True
        fields = {"tenant": self.state.tenant.tenant_id, "state": state, "admin_consent": "True"}
        if params.get("scope"):
            fields["scope"] = params["scope"]
        return self._consent_redirect(redirect_uri, fields)

    def _consent_redirect(self, redirect_uri: str, fields: dict[str, str | None]) -> Response:
        clean = {k: v for k, v in fields.items() if v is not None}
        sep = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(redirect_uri + sep + urlencode(clean), status_code=302)
