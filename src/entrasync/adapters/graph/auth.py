"""App-only tokens for Microsoft Graph (client-credentials flow through msal).

msal talks to the identity platform through :class:`~entrasync.adapters.graph.identity_http.IdentityHttp`:
entrasync's CA bundle stays authoritative (PRODUCT.md Appendix B), and token and discovery requests
get Graph's timeout, retry budget and ``Retry-After`` handling.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from entrasync.adapters.graph.credential import CredentialError, msal_credential
from entrasync.adapters.graph.errors import GraphError, GraphStopError
from entrasync.adapters.graph.identity_http import IdentityHttp
from entrasync.adapters.graph.retry import RetryBudget

if TYPE_CHECKING:  # msal (and requests under it) is imported when a token is asked for, not before
    import msal

log = logging.getLogger(__name__)

PUBLIC_GRAPH_RESOURCE = "https://graph.microsoft.com"
PUBLIC_LOGIN_URL = "https://login.microsoftonline.com"

# Graph service roots of the national clouds. For these the `.default` scope MUST use the cloud's own
# Graph domain: https://learn.microsoft.com/graph/sdks/national-clouds ("Permission scopes") and
# https://learn.microsoft.com/graph/deployments (service root endpoints).
_NATIONAL_GRAPH_HOSTS = frozenset(
    {
        "graph.microsoft.com",
        "graph.microsoft.us",
        "dod-graph.microsoft.us",
        "microsoftgraph.chinacloudapi.cn",
    }
)
# Hosts of the identity platform msal knows (instance discovery / authority validation works there).
_KNOWN_LOGIN_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoftonline.us",
        "login.partner.microsoftonline.cn",
        "login.chinacloudapi.cn",
    }
)

# msal error codes that mean "an admin must fix the app registration / consent / tenant".
_STOP_HINTS: dict[str, str] = {
    "invalid_client": "check the client id and client secret (or certificate) of the app registration",
    "unauthorized_client": "the app registration is not allowed in this tenant: check the client id and "
    "that the app is enabled there",
    "invalid_request": "check the tenant id and the login URL",
    "invalid_scope": "check the Graph URL (the scope is derived from it)",
    "consent_required": "grant admin consent for the application permissions",
    "interaction_required": "grant admin consent for the application permissions",
    "invalid_grant": "grant admin consent and check the client credentials",
}


@runtime_checkable
class TokenProvider(Protocol):
    """Anything that returns a bearer token; ``invalidate`` forces the next call to fetch a new one."""

    def __call__(self) -> str: ...

    def invalidate(self) -> None: ...


TokenSource = Callable[[], str] | TokenProvider


class TokenStore(Protocol):
    """Where an organisation's access token outlives the process (services.graph_tokens: sealed in its
    connection row). ``key`` is the provider's digest of (authority, client, credential, scope), so a
    token is only ever reused for the credential it was issued for. Implementations never raise: a
    store that cannot answer is a store that holds nothing."""

    def load(self) -> tuple[str, str, float] | None:
        """(key, token, expiry as epoch seconds) of the stored token, or None."""
        ...

    def save(self, key: str, token: str, expires_at: float) -> None: ...

    def forget(self) -> None: ...


def graph_scope(graph_url: str) -> str:
    """The client-credentials scope for ``graph_url``.

    National clouds use their own Graph domain; anything else (the built-in emulator, a test server)
    is asked for the public Graph resource, which is what such stand-ins accept.
    """
    parts = urlsplit(graph_url)
    host = (parts.hostname or "").lower()
    if host in _NATIONAL_GRAPH_HOSTS:
        return f"{parts.scheme}://{host}/.default"
    return f"{PUBLIC_GRAPH_RESOURCE}/.default"


class _ProcessTokens:
    """The access tokens this process holds, by (authority, client, credential, scope): a process that
    refreshes an organisation again (``serve``, ``worker``) reuses its token until five minutes before it
    expires, instead of a new msal app asking the identity platform for discovery and a token at every
    refresh (two requests, ~50-100 ms, half an unchanged refresh). Keyed by a SHA-256 of the
    credential, never the credential; a 401 from Graph drops the token (``invalidate``).

    Each token also carries its expiry on the wall clock and whether a token store holds it: a token a
    provider without a store got (``connect``'s check, ``serve``'s test button) is kept by the first
    provider with a store that takes it from here, so the next process finds it there too."""

    MARGIN_S = 300.0

    def __init__(self, size: int = 4096) -> None:
        self._lock = threading.Lock()
        self._size = size
        # key -> (token, monotonic deadline, wall-clock expiry, kept by a store)
        self._items: OrderedDict[str, tuple[str, float, float, bool]] = OrderedDict()

    def entry(self, key: str) -> tuple[str, float, bool] | None:
        """(token, wall-clock expiry, kept by a store), while the token lives past the margin."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[1] <= time.monotonic():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return item[0], item[2], item[3]

    def put(self, key: str, token: str, expires_in: Any, *, kept: bool = False) -> None:
        try:
            expires_in = float(expires_in)
        except (TypeError, ValueError):
            return
        lifetime = expires_in - self.MARGIN_S
        if lifetime <= 0:
            return
        with self._lock:
            self._items[key] = (token, time.monotonic() + lifetime, time.time() + expires_in, kept)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def mark_kept(self, key: str, token: str) -> None:
        with self._lock:
            item = self._items.get(key)
            if item is not None and item[0] == token:
                self._items[key] = (*item[:3], True)

    def drop(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


PROCESS_TOKENS = _ProcessTokens()


class MsalTokenProvider:
    """Client-credentials tokens from msal; msal caches them in memory until shortly before expiry."""

    def __init__(
        self,
        *,
        login_url: str,
        tenant_id: str,
        client_id: str,
        client_credential: str,
        graph_url: str = PUBLIC_GRAPH_RESOURCE,
        ca_bundle: str | None = None,
        timeout: float = 30.0,
        scope: str | None = None,
        budget: RetryBudget | None = None,
        http: IdentityHttp | None = None,
        store: TokenStore | None = None,
    ) -> None:
        self._store = store
        self._scopes = [scope or graph_scope(graph_url)]
        login_host = (urlsplit(login_url).hostname or "").lower()
        known_cloud = login_host in _KNOWN_LOGIN_HOSTS
        self._session = http or IdentityHttp(ca_bundle=ca_bundle, timeout=timeout, budget=budget or RetryBudget())
        self._lock = threading.Lock()
        self._app: msal.ConfidentialClientApplication | None = None
        self._app_kwargs: dict[str, Any] = {
            "client_id": client_id,
            "client_credential": client_credential,  # a secret, or a certificate PEM (see credential.py)
            "authority": f"{login_url.rstrip('/')}/{tenant_id}",
            # msal's instance discovery and authority validation call login.microsoftonline.com;
            # an emulator or private endpoint must not depend on that.
            "validate_authority": known_cloud,
            "instance_discovery": known_cloud,
            "http_client": self._session,
            "timeout": timeout,
        }
        key = "\x1f".join((self._app_kwargs["authority"], client_id, client_credential, *self._scopes, ca_bundle or ""))
        self._key = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()

    def _get_app(self) -> msal.ConfidentialClientApplication:
        import msal

        if self._app is None:
            try:
                credential = msal_credential(self._app_kwargs["client_credential"])
            except CredentialError as exc:
                raise GraphStopError(f"Cannot use the app registration's certificate: {exc}") from None
            try:
                self._app = msal.ConfidentialClientApplication(**{**self._app_kwargs, "client_credential": credential})
            except GraphError:
                raise
            except ValueError as exc:  # msal: OIDC discovery answered 4xx (no such tenant) or a bad authority
                raise GraphStopError(
                    f"The Microsoft identity platform does not know this tenant or authority ({_first_line(exc)}). "
                    "Check the tenant id and ENTRASYNC_LOGIN_URL."
                ) from None
        return self._app

    def __call__(self) -> str:
        held = PROCESS_TOKENS.entry(self._key)
        if held is not None:
            token, expires_at, kept = held
            if not kept and self._store is not None:
                self._keep(token, expires_at - time.time())
            return token
        stored = self._stored()
        if stored is not None:
            return stored
        with self._lock:
            app = self._get_app()
            result = app.acquire_token_for_client(scopes=self._scopes)
        if not isinstance(result, dict):
            raise GraphStopError("The Microsoft identity platform returned no token.")
        fresh = result.get("access_token")
        if isinstance(fresh, str) and fresh:
            PROCESS_TOKENS.put(self._key, fresh, result.get("expires_in"))
            self._keep(fresh, result.get("expires_in"))
            return fresh
        raise token_error(result)

    def _stored(self) -> str | None:
        """The store's token, if it was issued for this provider's credential and lives past the margin."""
        item = self._store.load() if self._store is not None else None
        if item is None:
            return None
        key, token, expires_at = item
        remaining = expires_at - time.time()
        if key != self._key or not token or remaining <= PROCESS_TOKENS.MARGIN_S:
            return None
        PROCESS_TOKENS.put(self._key, token, remaining, kept=True)
        return token

    def _keep(self, token: str, expires_in: Any) -> None:
        if self._store is None:
            return
        try:
            lifetime = float(expires_in)
        except (TypeError, ValueError):
            return
        if lifetime > PROCESS_TOKENS.MARGIN_S:
            self._store.save(self._key, token, time.time() + lifetime)
            PROCESS_TOKENS.mark_kept(self._key, token)

    def close(self) -> None:
        """Close the identity platform session (its keep-alive connection)."""
        self._session.close()

    def invalidate(self) -> None:
        """Drop cached access tokens so the next call asks the identity platform again (after a 401)."""
        PROCESS_TOKENS.drop(self._key)
        if self._store is not None:
            self._store.forget()
        with self._lock:
            if self._app is None:
                return
            import msal

            cache = self._app.token_cache
            for item in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                cache.remove_at(item)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def token_error(result: dict[str, Any]) -> GraphStopError:
    """Turn an msal error dict into a :class:`GraphStopError` (error code + description, no secret)."""
    code = str(result.get("error") or "token_error")
    description = str(result.get("error_description") or "").strip()
    # The description's first line is the AADSTS message; the rest is trace/correlation ids.
    first_line = description.splitlines()[0] if description else ""
    hint = _STOP_HINTS.get(code, "check the app registration, its secret and admin consent")
    message = f"Could not get a token for Microsoft Graph ({code}"
    message += f": {first_line})" if first_line else ")"
    message += f"; {hint}."
    log.warning("token request failed: %s", code)
    return GraphStopError(message, code=code)
