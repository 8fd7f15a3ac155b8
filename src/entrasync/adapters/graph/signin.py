"""Sign-in at Microsoft (OpenID Connect authorization code + PKCE, through msal) and the admin-consent URL.

The web app's door to the identity platform, beside the sync's client credentials (adapters.graph.auth):
both go through :class:`~entrasync.adapters.graph.identity_http.IdentityHttp`, so the CA bundle stays
entrasync's own (PRODUCT.md Appendix B) and discovery and token requests are retried and time out alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import msal

from entrasync.adapters.graph.credential import msal_credential
from entrasync.adapters.graph.errors import GraphError
from entrasync.adapters.graph.identity_http import IdentityHttp
from entrasync.adapters.graph.retry import RetryBudget
from entrasync.errors import EntrasyncError

# msal's flow dict keys we keep in the session between the redirect and the callback.
_FLOW_KEYS = ("state", "redirect_uri", "scope", "code_verifier", "nonce", "claims_challenge")


class MicrosoftSignInError(EntrasyncError):
    status = 400


@dataclass(frozen=True)
class MicrosoftIdentity:
    tenant_id: str
    object_id: str
    username: str  # preferred_username
    email: str | None
    name: str
    wids: tuple[str, ...]


@dataclass(frozen=True)
class SignInConfig:
    """The deployment's app registration and where the identity platform is (from the configuration)."""

    login_url: str
    client_id: str | None
    client_credential: str | None = field(default=None, repr=False)  # secret or certificate PEM
    ca_bundle: str | None = None
    timeout: float = 30.0
    budget: RetryBudget = field(default_factory=RetryBudget)


def _app(config: SignInConfig, tenant: str) -> tuple[msal.ConfidentialClientApplication, IdentityHttp]:
    try:
        secret = config.client_credential
        credential = msal_credential(secret) if config.client_id and secret else None
    except ValueError as exc:  # an unreadable or unusable certificate (CredentialError is a ValueError)
        raise MicrosoftSignInError(f"The app registration's certificate cannot be used: {exc}") from None
    if not config.client_id or credential is None:
        raise MicrosoftSignInError(
            "This deployment has no app registration: set ENTRASYNC_CLIENT_ID and ENTRASYNC_CLIENT_SECRET "
            "(or ENTRASYNC_CLIENT_CERTIFICATE)."
        )
    http = IdentityHttp(ca_bundle=config.ca_bundle, timeout=config.timeout, budget=config.budget)
    try:
        app = msal.ConfidentialClientApplication(
            config.client_id,
            client_credential=credential,
            authority=f"{config.login_url.rstrip('/')}/{tenant}",
            instance_discovery=False,
            http_client=http,
        )
    except GraphError as exc:
        http.close()
        raise MicrosoftSignInError(f"Could not reach the Microsoft sign-in service: {exc}") from None
    except ValueError as exc:
        http.close()
        raise MicrosoftSignInError(
            f"The Microsoft sign-in service does not know this organisation ({str(exc).splitlines()[0][:200]})."
        ) from None
    return app, http


def start(config: SignInConfig, tenant: str, redirect_uri: str) -> tuple[str, dict[str, Any]]:
    """The Microsoft sign-in URL and the flow to keep (in the session) for the callback."""
    app, http = _app(config, tenant)
    try:
        flow = app.initiate_auth_code_flow(scopes=[], redirect_uri=redirect_uri)
    finally:
        http.close()
    kept = {k: flow[k] for k in _FLOW_KEYS if k in flow}
    kept["tenant"] = tenant
    return str(flow["auth_uri"]), kept


def finish(config: SignInConfig, flow: dict[str, Any], params: dict[str, str]) -> MicrosoftIdentity:
    """Redeem the code (msal checks state and nonce, and sends the PKCE verifier); return who signed in."""
    if params.get("error"):
        raise MicrosoftSignInError(f"Microsoft sign-in failed: {params.get('error_description') or params['error']}")
    if not params.get("state") or params.get("state") != flow.get("state"):
        raise MicrosoftSignInError("The Microsoft sign-in answer did not match this browser session. Try again.")
    tenant = str(flow.get("tenant", "organizations"))
    msal_flow = {k: v for k, v in flow.items() if k != "tenant"}
    app, http = _app(config, tenant)
    try:
        result = app.acquire_token_by_auth_code_flow(msal_flow, params)
    except GraphError as exc:
        raise MicrosoftSignInError(f"Microsoft sign-in failed: {exc}") from None
    except ValueError as exc:  # msal: the answer does not match the flow (state, nonce)
        raise MicrosoftSignInError(f"Microsoft sign-in failed: {exc}") from None
    finally:
        http.close()
    if "error" in result:
        raise MicrosoftSignInError(
            f"Microsoft sign-in failed: {result.get('error_description') or result.get('error')}"
        )
    claims: dict[str, Any] = result.get("id_token_claims") or {}
    if claims.get("aud") != config.client_id or not claims.get("tid") or not claims.get("oid"):
        raise MicrosoftSignInError("Microsoft returned an ID token that is not for this application.")
    wids = claims.get("wids") or []
    return MicrosoftIdentity(
        tenant_id=str(claims["tid"]).lower(),
        object_id=str(claims["oid"]),
        username=str(claims.get("preferred_username") or ""),
        email=str(claims["email"]) if claims.get("email") else None,
        name=str(claims.get("name") or claims.get("preferred_username") or ""),
        wids=tuple(str(w) for w in wids if isinstance(w, str)),
    )


def admin_consent_url(config: SignInConfig, tenant: str, redirect_uri: str, state: str) -> str:
    query = urlencode({"client_id": config.client_id or "", "redirect_uri": redirect_uri, "state": state})
    return f"{config.login_url.rstrip('/')}/{tenant}/adminconsent?{query}"
