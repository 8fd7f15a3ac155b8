"""Sign in with Microsoft and admin consent (§2, §7): the deployment's app registration, from configuration."""

from __future__ import annotations

from typing import Any

from entrasync.adapters.graph.retry import RetryBudget
from entrasync.adapters.graph.signin import (
    MicrosoftIdentity,
    MicrosoftSignInError,
    SignInConfig,
)
from entrasync.adapters.graph.signin import admin_consent_url as _consent_url
from entrasync.adapters.graph.signin import finish as _finish
from entrasync.adapters.graph.signin import start as _start
from entrasync.config import Config

__all__ = ["MicrosoftIdentity", "MicrosoftSignInError", "admin_consent_url", "finish", "start"]


def _config(config: Config) -> SignInConfig:
    try:
        credential = config.client_credential
    except ValueError as exc:  # an unreadable certificate file
        raise MicrosoftSignInError(str(exc)) from None
    return SignInConfig(
        login_url=config.login_url,
        client_id=config.client_id,
        client_credential=credential,
        ca_bundle=str(config.ca_bundle) if config.ca_bundle else None,
        timeout=config.graph_timeout,
        budget=RetryBudget(max_seconds=config.graph_max_retry_seconds),
    )


def start(config: Config, tenant: str, redirect_uri: str) -> tuple[str, dict[str, Any]]:
    """The Microsoft sign-in URL and the flow to keep in the session for the callback."""
    return _start(_config(config), tenant, redirect_uri)


def finish(config: Config, flow: dict[str, Any], params: dict[str, str]) -> MicrosoftIdentity:
    """Redeem the code and say who signed in (msal checks state, nonce and PKCE)."""
    return _finish(_config(config), flow, params)


def admin_consent_url(config: Config, tenant: str, redirect_uri: str, state: str) -> str:
    return _consent_url(_config(config), tenant, redirect_uri, state)
