"""The identity platform's token endpoint: client credentials (secret or certificate assertion) and the
authorization code grant with PKCE, for the one multi-tenant app registration.

- https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow: a token for
  ``{login}/{tenant}/oauth2/v2.0/token`` carries ``tid`` = that tenant; a tenant where the app is not
  consented answers ``unauthorized_client`` AADSTS700016, an unknown tenant ``invalid_request`` AADSTS90002,
  and (with several tenants) ``organizations``/``common`` AADSTS50059
  (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
- https://learn.microsoft.com/entra/identity-platform/certificate-credentials
- https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow (PKCE S256)
- https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import jwt
import orjson
from starlette.requests import Request
from starlette.responses import Response

from entrasync.emulator.objects import User
from entrasync.emulator.state import GRAPH_APP_ID, GRAPH_AUDIENCE, EmulatorState
from entrasync.emulator.tenants import TenantState

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
OIDC_SCOPES = {"openid", "profile", "email", "offline_access"}
ANY_TENANT = ("common", "organizations")


def oauth_error(state: EmulatorState, status: int, error: str, code: int, description: str) -> Response:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    body = {
        "error": error,
        "error_description": f"AADSTS{code}: {description} Trace ID: {uuid.uuid4()} Correlation ID: "
        f"{uuid.uuid4()} Timestamp: {now}",
        "error_codes": [code],
        "timestamp": now,
        "trace_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
        "error_uri": f"{state.base_url}/error?code={code}",
    }
    return Response(orjson.dumps(body), status, media_type="application/json; charset=utf-8")


def app_not_found(client_id: str | None, directory: str) -> str:
    return (
        f"Application with identifier '{client_id}' was not found in the directory '{directory}'. This can "
        "happen if the application has not been installed by the administrator of the tenant or consented to "
        "by any user in the tenant. You may have sent your authentication request to the wrong tenant."
    )


def tenant_not_found(alias: str) -> str:
    return (
        f"Tenant '{alias}' not found. Check to make sure you have the correct tenant ID and are signing into "
        "the correct cloud. Check with your subscription administrator, this may happen if there are no active "
        "subscriptions for the tenant."
    )


def token_json(body: dict[str, Any]) -> Response:
    return Response(
        orjson.dumps(body),
        media_type="application/json; charset=utf-8",
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


class TokenEndpoint:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def _error(self, status: int, error: str, code: int, description: str) -> Response:
        return oauth_error(self.state, status, error, code, description)

    async def handle(self, request: Request) -> Response:
        alias = request.path_params["tenant"]
        ts = self.state.default if alias.lower() in ANY_TENANT else self.state.tenants.resolve(alias)
        if ts is None:
            return self._error(400, "invalid_request", 90002, tenant_not_found(alias))
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
        grant = form.get("grant_type")
        if grant == "client_credentials" and alias.lower() in ANY_TENANT and self.state.tenants.multi:
            # An app-only token needs a tenant; a one-tenant emulator still answers for its tenant.
            return self._error(
                400,
                "invalid_request",
                50059,
                "No tenant-identifying information found in either the request or implied by any provided credentials.",
            )
        if client_id != self.state.client_id or (grant == "client_credentials" and not ts.consented):
            return self._error(400, "unauthorized_client", 700016, app_not_found(client_id, ts.profile.company))
        assertion = form.get("client_assertion")
        if assertion is not None or form.get("client_assertion_type") is not None:
            refused = self._check_client_assertion(request, form, assertion)
            if refused is not None:
                return refused
        elif secret is None:
            return self._error(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        elif not secrets.compare_digest(secret, self.state.client_secret):
            return self._error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
                "value, not the client secret ID.",
            )
        if grant == "client_credentials":
            scope = form.get("scope", "")
            if scope.strip() not in (f"{GRAPH_AUDIENCE}/.default", f"{GRAPH_APP_ID}/.default"):
                return self._error(
                    400,
                    "invalid_scope",
                    1002012,
                    f"The provided value for scope {scope} is not valid. Client credential flows must have a scope "
                    "value with /.default suffixed to the resource identifier (application ID URI).",
                )
            lifetime = self.state.token_lifetime
            return token_json(
                {
                    "token_type": "Bearer",
                    "expires_in": lifetime,
                    "ext_expires_in": lifetime,
                    "access_token": self.state.app_token(ts),
                }
            )
        if grant == "authorization_code":
            return self._code_grant(form)
        return self._error(
            400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant}'."
        )

    def _check_client_assertion(self, request: Request, form: dict[str, str], assertion: str | None) -> Response | None:
        """A certificate credential: an RS256/PS256 JWT naming a registered certificate by thumbprint,
        with ``aud`` the token endpoint and ``iss`` = ``sub`` = the client id."""
        if form.get("client_assertion_type") != JWT_BEARER or not assertion:
            return self._error(
                400,
                "invalid_request",
                50027,
                f"Invalid client assertion: client_assertion_type must be '{JWT_BEARER}' and client_assertion a JWT.",
            )
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return self._error(400, "invalid_request", 50027, "JWT token is invalid or malformed.")
        alg = header.get("alg")
        thumbprint = str(header.get("x5t#S256") or header.get("x5t") or "").rstrip("=")  # padded or not
        key = self.state.app_certificate_keys.get(thumbprint)
        if alg not in ("RS256", "PS256") or key is None:
            return self._error(
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
            return self._error(401, "invalid_client", 700024, "Client assertion is not within its valid time range.")
        except jwt.InvalidSignatureError:
            return self._error(401, "invalid_client", 700027, "Client assertion failed signature validation.")
        except jwt.PyJWTError as exc:
            return self._error(401, "invalid_client", 50027, f"Invalid client assertion: {exc}.")
        if claims.get("iss") != self.state.client_id or claims.get("sub") != self.state.client_id:
            return self._error(
                401,
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            )
        return None

    def _code_grant(self, form: dict[str, str]) -> Response:
        code = self.state.auth_codes.pop(form.get("code", ""), None)
        if code is None or code.expires < time.time():
            return self._error(
                400,
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to inactivity or was already "
                "redeemed.",
            )
        if form.get("redirect_uri") != code.redirect_uri:
            return self._error(
                400,
                "invalid_grant",
                50148,
                "The redirect_uri does not match the one used in the authorization request.",
            )
        if code.code_challenge:
            verifier = form.get("code_verifier", "")
            if code.code_challenge_method == "S256":
                computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
            else:
                computed = verifier
            if not verifier or not secrets.compare_digest(computed, code.code_challenge):
                return self._error(
                    400,
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                )
        ts = self.state.tenants.get(code.tenant_id) or self.state.default
        user = ts.store.users.get(code.user_id)
        if user is None:
            return self._error(400, "invalid_grant", 50034, "The user account does not exist.")
        scopes = code.scope.split()
        resource_scopes = [s.rsplit("/", 1)[-1] for s in scopes if s.lower() not in OIDC_SCOPES]
        lifetime = self.state.token_lifetime
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(scopes),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": self.state.sign(
                {
                    "aud": GRAPH_AUDIENCE,
                    "iss": self.state.issuer(ts.tenant_id),
                    "tid": ts.tenant_id,
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
            body["id_token"] = self.id_token(user, code.client_id, code.nonce, ts)
        if "offline_access" in scopes:
            body["refresh_token"] = secrets.token_urlsafe(48)
        return token_json(body)

    def id_token(self, user: User, client_id: str, nonce: str | None, ts: TenantState) -> str:
        claims: dict[str, Any] = {
            "aud": client_id,
            "iss": self.state.issuer(ts.tenant_id),
            "tid": ts.tenant_id,
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
