"""The token store hook of MsalTokenProvider (adapters.graph.auth.TokenStore), against a scripted identity
platform: a stored token issued for the same credential and living past the margin is used without
asking anyone; a token for another credential, or about to expire, is not; a new token is kept with its
expiry; a 401's invalidate forgets it; and no token request loads msal when the store answers."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
from tests.graph.graph_fakes import FakeClock
from tests.graph.test_identity_retry import DISCOVERY, LOGIN, TENANT, TOKEN_PATH, _discovery

from entrasync.adapters.graph.auth import PROCESS_TOKENS, MsalTokenProvider, TokenStore
from entrasync.adapters.graph.identity_http import IdentityHttp
from entrasync.adapters.graph.retry import RetryBudget


class MemoryStore:
    def __init__(self, item: tuple[str, str, float] | None = None) -> None:
        self.item = item
        self.saved: list[tuple[str, str, float]] = []
        self.forgotten = 0

    def load(self) -> tuple[str, str, float] | None:
        return self.item

    def save(self, key: str, token: str, expires_at: float) -> None:
        self.saved.append((key, token, expires_at))
        self.item = (key, token, expires_at)

    def forget(self) -> None:
        self.forgotten += 1
        self.item = None


def _provider(store: TokenStore | None, posts: list[str], secret: str = "s3cret-value") -> MsalTokenProvider:
    def handler(request: httpx.Request) -> httpx.Response:
        posts.append(request.url.path)
        if request.url.path == DISCOVERY:
            return _discovery()
        if request.url.path == TOKEN_PATH:
            n = sum(p == TOKEN_PATH for p in posts)
            return httpx.Response(200, json={"access_token": f"fresh-{n}", "token_type": "Bearer", "expires_in": 3600})
        return httpx.Response(404)

    clock = FakeClock()
    http = IdentityHttp(ca_bundle=None, timeout=5, budget=RetryBudget(), transport=httpx.MockTransport(handler),
                        sleep=clock.sleep, clock=clock.clock, rng=lambda: 0.5)  # fmt: skip
    return MsalTokenProvider(
        login_url=LOGIN, tenant_id=TENANT, client_id="c", client_credential=secret, http=http, store=store
    )


def _key_of(provider: MsalTokenProvider) -> str:
    return provider._key


def test_a_new_token_is_kept_with_its_expiry_and_then_reused_by_a_new_process() -> None:
    store, posts = MemoryStore(), []
    first = _provider(store, posts)
    before = time.time()
    assert first() == "fresh-1"
    [(key, token, expires_at)] = store.saved
    assert key == _key_of(first) and token == "fresh-1" and before + 3590 < expires_at <= time.time() + 3600
    PROCESS_TOKENS.clear()  # a new process
    posts.clear()
    again = _provider(store, posts)
    assert again() == "fresh-1"
    assert posts == []  # neither discovery nor the token endpoint was asked
    assert again() == "fresh-1" and len(store.saved) == 1  # then held in the process, not saved again


def test_a_token_for_another_credential_or_about_to_expire_is_not_used() -> None:
    posts: list[str] = []
    other = _provider(None, [], secret="another-secret")
    for item in [
        (_key_of(other), "for-another-credential", time.time() + 3000),
        (_key_of(_provider(None, [])), "nearly-expired", time.time() + PROCESS_TOKENS.MARGIN_S - 1),
        (_key_of(_provider(None, [])), "", time.time() + 3000),
    ]:
        PROCESS_TOKENS.clear()
        posts.clear()
        store = MemoryStore(item)
        assert _provider(store, posts)() == "fresh-1", item
        assert TOKEN_PATH in posts
        assert store.saved[-1][1] == "fresh-1"  # replaced by the new one


def test_invalidate_forgets_the_stored_token() -> None:
    key = _key_of(_provider(None, []))
    store, posts = MemoryStore((key, "stored", time.time() + 3000)), []
    provider = _provider(store, posts)
    assert provider() == "stored"
    provider.invalidate()  # what GraphClient does on a 401 or 403
    assert store.forgotten == 1 and store.item is None
    assert provider() == "fresh-1"


def test_a_stored_token_is_used_without_loading_msal() -> None:
    code = (
        "import sys, time\n"
        "from entrasync.adapters.graph.auth import MsalTokenProvider\n"
        "probe = MsalTokenProvider(login_url='https://login.test', tenant_id='t', client_id='c',"
        " client_credential='s')\n"
        "class S:\n"
        "    def load(self): return (probe._key, 'stored', time.time() + 3000)\n"
        "    def save(self, *a): raise AssertionError('saved')\n"
        "    def forget(self): raise AssertionError('forgot')\n"
        "probe._store = S()\n"
        "assert probe() == 'stored'\n"
        "print('msal' in sys.modules, 'requests' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_a_token_the_process_got_without_a_store_is_kept_by_the_first_provider_with_one() -> None:
    """``connect`` checks the credential with a provider without a store; the refresh that follows in
    the same process takes that token from the process and must keep it for the next process."""
    posts: list[str] = []
    assert _provider(None, posts)() == "fresh-1"  # the connection check
    store = MemoryStore()
    before = time.time()
    assert _provider(store, posts)() == "fresh-1"
    assert sum(p == TOKEN_PATH for p in posts) == 1  # no second token request
    [(_, token, expires_at)] = store.saved
    assert token == "fresh-1" and before + 3590 < expires_at <= time.time() + 3600
    assert _provider(store, posts)() == "fresh-1" and len(store.saved) == 1  # kept once, not at every call
    PROCESS_TOKENS.clear()  # the next process
    posts.clear()
    assert _provider(store, posts)() == "fresh-1" and posts == []


def test_a_kept_token_builds_no_client_for_the_identity_platform() -> None:
    """No TLS context from the CA bundle (certifi's ~150 roots) for a service the refresh never asks."""
    key = _key_of(_provider(None, []))
    http = IdentityHttp(ca_bundle=None, timeout=5, budget=RetryBudget())
    provider = MsalTokenProvider(login_url=LOGIN, tenant_id=TENANT, client_id="c", client_credential="s3cret-value",
                                 http=http, store=MemoryStore((key, "stored", time.time() + 3000)))  # fmt: skip
    assert provider() == "stored"
    assert http._client is None
    provider.close()
    assert http._client is None
