"""Injected faults (throttling, outages, broken bodies) and the identity-platform pages."""

from __future__ import annotations

import base64
import hashlib
import re
import ssl
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from entrasync.emulator.admin_client import AdminClient
from entrasync.emulator.server import EmulatorInfo

from .conftest import assert_graph_error


@pytest.mark.parametrize(
    ("kind", "retry_after"), [("429", "2"), ("429", "0.5"), ("503", None), ("503", "3"), ("504", None)]
)
def test_throttling_and_outages(graph: httpx.Client, admin: AdminClient, kind: str, retry_after: str | None) -> None:
    # https://learn.microsoft.com/graph/throttling (429 + Retry-After) and https://learn.microsoft.com/graph/errors
    admin.inject_fault("/v1.0/users*", kind, count=2, retry_after=retry_after)
    for _ in range(2):
        r = graph.get("/users", params={"$top": "1"})
        err = assert_graph_error(
            r, int(kind), {"429": "TooManyRequests", "503": "serviceNotAvailable", "504": "UnknownError"}[kind]
        )
        assert err
        assert r.headers.get("Retry-After") == retry_after
    assert graph.get("/users", params={"$top": "1"}).status_code == 200
    assert graph.get("/groups", params={"$top": "1"}).status_code == 200


def test_reset_truncate_no_value_and_delay(graph: httpx.Client, admin: AdminClient) -> None:
    admin.inject_fault("/v1.0/users", "reset")
    with pytest.raises(httpx.TransportError):
        graph.get("/users", params={"$top": "5"})
    admin.inject_fault("/v1.0/users", "truncate")
    r = graph.get("/users", params={"$top": "5"})
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()
    admin.inject_fault("/v1.0/users", "no_value")
    body = graph.get("/users", params={"$top": "5"}).json()
    assert "value" not in body and "@odata.context" in body
    admin.inject_fault("re:^/v1\\.0/users$", "delay", delay=0.3)
    started = time.perf_counter()
    assert graph.get("/users", params={"$top": "1"}).status_code == 200
    assert time.perf_counter() - started >= 0.3
    assert graph.get("/users", params={"$top": "1"}).status_code == 200


def test_counters(graph: httpx.Client, admin: AdminClient) -> None:
    admin.reset_counters()
    graph.get("/users", params={"$top": "1"})
    graph.get("/users", params={"$top": "1"})
    graph.get("/groups")
    counts = admin.counters()
    assert counts["GET /v1.0/users"] == 2 and counts["GET /v1.0/groups"] == 1


def test_tenant_summary_and_admin_users(admin: AdminClient) -> None:
    summary = admin.tenant_summary()
    assert summary["userCount"] > 9000 and summary["departments"] and summary["groups"]
    assert any(a["globalAdministrator"] for a in summary["admins"])
    users = admin.list_users()
    assert len(users) == summary["userCount"] and "managerId" in users[0] and "accountEnabled" in users[0]


def _client(info: EmulatorInfo) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=info.ca_bundle), trust_env=False)


def test_discovery_and_jwks(info: EmulatorInfo) -> None:
    # https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc
    with _client(info) as c:
        for alias in (info.tenant_id, "organizations", "common"):
            doc = c.get(f"{info.login_url}/{alias}/v2.0/.well-known/openid-configuration").json()
            assert doc["token_endpoint"].startswith(info.login_url)
        doc = c.get(f"{info.login_url}/{info.tenant_id}/v2.0/.well-known/openid-configuration").json()
        assert doc["issuer"] == f"{info.login_url}/{info.tenant_id}/v2.0"
        keys = c.get(doc["jwks_uri"]).json()["keys"]
        assert keys[0]["kty"] == "RSA" and keys[0]["kid"]


def _pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(b"v" * 40).decode().rstrip("=")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def _buttons(html: str) -> dict[str, str]:
    """Button text -> value (the account id or decision)."""
    found = re.findall(r'<button type="submit" name="\w+" value="([^"]+)"[^>]*>(.*?)</button>', html, re.S)
    return {
        re.sub(r"<[^>]+>", " ", text).split()[0] + " " + " ".join(re.sub(r"<[^>]+>", " ", text).split()[1:]): value
        for value, text in found
    }


def test_sign_in_page_code_flow_with_pkce(info: EmulatorInfo) -> None:
    # Auth code + PKCE: https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow
    # ID token claims: https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference
    verifier, challenge = _pkce()
    redirect = "http://localhost:8765/auth/callback"
    auth = f"{info.login_url}/{info.tenant_id}/oauth2/v2.0/authorize"
    params = {
        "client_id": info.client_id,
        "response_type": "code",
        "redirect_uri": redirect,
        "scope": "openid profile offline_access",
        "state": "st-1",
        "nonce": "n-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    with _client(info) as c:
        page = c.get(auth, params=params)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        buttons = _buttons(page.text)
        admin_button = next(k for k in buttons if "Global Administrator" in k)
        assert any(k.endswith(" User") for k in buttons)
        form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
        form["account"] = buttons[admin_button]
        done = c.post(auth, data=form)
        assert done.status_code == 302
        loc = urlsplit(done.headers["location"])
        q = parse_qs(loc.query)
        assert loc.netloc == "localhost:8765" and q["state"] == ["st-1"]
        token_url = f"{info.login_url}/{info.tenant_id}/oauth2/v2.0/token"
        base = {
            "grant_type": "authorization_code",
            "client_id": info.client_id,
            "client_secret": info.client_secret,
            "redirect_uri": redirect,
            "code": q["code"][0],
        }
        bad = c.post(token_url, data={**base, "code_verifier": "wrong"})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
        # the code is single use: a failed attempt consumed it, so sign in again
        done = c.post(auth, data=form)
        base["code"] = parse_qs(urlsplit(done.headers["location"]).query)["code"][0]
        ok = c.post(token_url, data={**base, "code_verifier": verifier})
        assert ok.status_code == 200, ok.text
        jwks = jwt.PyJWKClient(
            f"{info.login_url}/{info.tenant_id}/discovery/v2.0/keys",
            ssl_context=ssl.create_default_context(cafile=info.ca_bundle),
        )
        id_token = ok.json()["id_token"]
        claims = jwt.decode(
            id_token,
            jwks.get_signing_key_from_jwt(id_token).key,
            algorithms=["RS256"],
            audience=info.client_id,
            issuer=f"{info.login_url}/{info.tenant_id}/v2.0",
        )
        assert claims["tid"] == info.tenant_id and claims["nonce"] == "n-1"
        assert "62e90394-69f5-4237-9190-012177145e10" in claims["wids"]
        assert claims["oid"] == buttons[admin_button] and claims["preferred_username"]
        bad_redirect = c.get(auth, params={**params, "redirect_uri": "https://evil.example/cb"})
        assert bad_redirect.status_code == 400 and "AADSTS50011" in bad_redirect.text


def test_admin_consent_accept_cancel_and_non_admin(info: EmulatorInfo) -> None:
    # https://learn.microsoft.com/entra/identity-platform/v2-admin-consent
    url = f"{info.login_url}/{info.tenant_id}/adminconsent"
    params = {"client_id": info.client_id, "redirect_uri": "http://127.0.0.1:9000/consent", "state": "s-9"}
    with _client(info) as c:
        page = c.get(url, params=params)
        buttons = _buttons(page.text)
        hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
        ga = next(v for k, v in buttons.items() if "Global Administrator" in k)
        user = next(v for k, v in buttons.items() if k.endswith(" User"))
        consent = c.post(url, data={**hidden, "account": ga})
        assert "User.Read.All" in consent.text and "GroupMember.Read.All" in consent.text
        choices = _buttons(consent.text)
        assert set(choices) == {"Accept ", "Cancel "} or {k.strip() for k in choices} == {"Accept", "Cancel"}
        consent_hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', consent.text))
        accepted = c.post(url, data={**consent_hidden, "decision": "accept"})
        q = parse_qs(urlsplit(accepted.headers["location"]).query)
        assert q == {"tenant": [info.tenant_id], "state": ["s-9"], "admin_consent": ["True"]}
        cancelled = c.post(url, data={**consent_hidden, "decision": "cancel"})
        q = parse_qs(urlsplit(cancelled.headers["location"]).query)
        assert q["error"] == ["access_denied"] and q["error_description"] and q["state"] == ["s-9"]
        refused = c.post(url, data={**hidden, "account": user})
        q = parse_qs(urlsplit(refused.headers["location"]).query)
        assert q["error"] == ["permission_denied"] and "admin_consent" not in q


def test_token_endpoint_errors(info: EmulatorInfo) -> None:
    # https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow#error-response
    url = f"{info.login_url}/{info.tenant_id}/oauth2/v2.0/token"
    with _client(info) as c:
        r = c.post(
            url,
            data={
                "grant_type": "client_credentials",
                "client_id": info.client_id,
                "client_secret": "wrong",
                "scope": "https://graph.microsoft.com/.default",
            },
        )
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
        r = c.post(
            url,
            data={
                "grant_type": "client_credentials",
                "client_id": info.client_id,
                "client_secret": info.client_secret,
                "scope": "User.Read.All",
            },
        )
        assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
        token = c.post(
            url,
            data={
                "grant_type": "client_credentials",
                "client_id": info.client_id,
                "client_secret": info.client_secret,
                "scope": "https://graph.microsoft.com/.default",
            },
        ).json()["access_token"]
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["roles"] == ["User.Read.All", "GroupMember.Read.All"] and claims["tid"] == info.tenant_id
        assert jwt.get_unverified_header(token)["kid"]


def test_bad_requests_never_html(info: EmulatorInfo, graph: httpx.Client) -> None:
    for path in ("/v1.0/users?$filter=(((", "/v1.0/users?$top=x", "/v1.0/%ZZ", "/v1.0/groups/x/bogus"):
        r = graph.get(f"{info.graph_url}{path}")
        assert r.status_code >= 400 and r.headers["content-type"].startswith("application/json")
        assert "error" in r.json() and "Traceback" not in r.text
