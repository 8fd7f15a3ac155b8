"""Issue 6 part 5: CSRF on every state-changing route, sessions, cookie flags, the sign-in rate limit,
no open redirects in the sign-in and consent round trips, and OAuth state checks."""

from __future__ import annotations

import html
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from fastapi.testclient import TestClient
from tests.security.conftest import (
    BASE_URL,
    ORG1_DOMAIN,
    World,
    at_microsoft,
    back_to_app,
    location_path,
    microsoft_round_trip,
)
from tests.security.test_access_matrix import RULES, enumerate_routes
from tests.web.conftest import PASSWORD, add_account, csrf_of, make_ctx, sign_in_client

from entrasync.services.context import AppContext
from entrasync.web.app import create_app
from entrasync.web.auth import COOKIE, SESSION_TTL

CSRF_MESSAGE = "did not come from this site"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


# ---- CSRF -------------------------------------------------------------------------------------------


def _write_routes(world: World) -> list[tuple[str, str]]:
    """State-changing routes a session cookie can reach (the operator API takes only its own bearer token)."""
    routes = sorted(k for k in enumerate_routes(world.app) if k[0] in WRITES and RULES[k].level != "operator")
    return sorted(routes, key=lambda k: k[1] == "/signout")  # sign-out ends the session: last


def _send(world: World, client: TestClient, method: str, path: str, csrf: str | None) -> Any:
    rule = RULES[(method, path)]
    ids = world.ids
    url = path.format(person_id=ids["target"], run_id=ids["run"], notification_id=ids["notification"],
                      token_id=ids["token"], override_id=ids["override"],
                      webhook_id=ids["webhook"], slug="default")  # fmt: skip
    body = rule.body(world, "super_admin_ga") if rule.body else {}
    if path.startswith("/api/"):
        headers = {"X-CSRF-Token": csrf} if csrf is not None else {}
        return client.request(method, url, json=body or None, headers=headers, follow_redirects=False)
    data = {**body, **({"csrf_token": csrf} if csrf is not None else {})}
    return client.post(url, data=data, follow_redirects=False)


def test_sign_in_limit_is_shared_by_every_web_process(app_ctx: AppContext) -> None:
    """Two app instances on one database stand for two `entrasync serve` processes behind a load
    balancer: failures on either count towards one limit."""
    add_account(app_ctx, "it@example.com", ["it_admin"])
    with TestClient(create_app(app_ctx)) as a, TestClient(create_app(app_ctx)) as b:
        tokens = {a: csrf_of(a.get("/signin").text), b: csrf_of(b.get("/signin").text)}

        def attempt(tc: TestClient, password: str) -> int:
            data = {"csrf_token": tokens[tc], "email": "it@example.com", "password": password}
            return int(tc.post("/signin", data=data, follow_redirects=False).status_code)

        assert [attempt(a if i % 2 else b, f"wrong {i}") for i in range(10)] == [400] * 10
        assert attempt(a, PASSWORD) == 429
        assert attempt(b, PASSWORD) == 429


def test_sign_in_limiter_window_spray_and_digests(app_ctx: AppContext) -> None:
    from datetime import timedelta

    import sqlalchemy as sa

    from entrasync.adapters.db import tables as t
    from entrasync.web.auth import RateLimitedError, SignInLimiter

    now = [app_ctx.now()]
    app_ctx.clock = lambda: now[0]
    limiter = SignInLimiter(app_ctx, per_account=3, per_address=5, window=300)
    for _ in range(3):
        limiter.check("Someone@Example.com", "10.0.0.1")
        limiter.failed("Someone@Example.com", "10.0.0.1")
    with pytest.raises(RateLimitedError):
        limiter.check("someone@example.com ", "10.0.0.1")
    limiter.check("someone@example.com", "10.0.0.2")  # another address has its own count
    now[0] += timedelta(seconds=301)
    limiter.check("someone@example.com", "10.0.0.1")  # the window has passed
    # A spray of different e-mails from one address hits the address limit.
    for i in range(5):
        limiter.failed(f"user{i}@example.com", "10.0.0.9")
    with pytest.raises(RateLimitedError):
        limiter.check("fresh@example.com", "10.0.0.9")
    # A success clears that account's count, not the address's.
    limiter.failed("it@example.com", "10.0.0.3")
    limiter.succeeded("it@example.com", "10.0.0.3")
    with app_ctx.db.reader.connect() as conn:
        keys = [r[0] for r in conn.execute(sa.select(t.sign_in_failures.c.key))]
    assert keys and all(re.fullmatch(r"[0-9a-f]{64}", k) for k in keys)
    assert not any("example.com" in k for k in keys)  # only digests: a password typed as e-mail is not kept


def test_every_write_needs_the_csrf_token(world: World) -> None:
    """Signed in with every right (Super admin + Global Administrator), each write without the token,
    with another session's token and with a wrong one is 403; with the right token it is not."""
    rc = world.clients["super_admin_ga"]
    other = world.clients["it_admin"].csrf
    routes = _write_routes(world)
    assert len(routes) >= 30, routes
    failures: list[str] = []
    for method, path in routes:
        client = world.clients["anonymous"].client if RULES[(method, path)].level == "public" else rc.client
        csrf = world.clients["anonymous"].csrf if client is not rc.client else rc.csrf
        for bad in (None, "", other, csrf[:-2] + "xx"):
            r = _send(world, client, method, path, bad)
            if r.status_code != 403 or CSRF_MESSAGE not in r.text:
                failures.append(f"{method} {path} with CSRF {bad!r}: {r.status_code} {r.text[:120]}")
        r = _send(world, client, method, path, csrf)
        # A route that refuses whoever asks (the organisation chooser, with no choice pending) may say
        # 403, but for its own reason, never the CSRF one.
        refused_itself = RULES[(method, path)].refused and CSRF_MESSAGE not in r.text
        if (r.status_code == 403 and not refused_itself) or r.status_code >= 500:
            failures.append(f"{method} {path} with the right CSRF token: {r.status_code} {r.text[:200]}")
    print(f"\nCSRF: {len(routes)} state-changing routes × 5 requests")
    assert not failures, "\n".join(failures)


def test_bearer_tokens_need_no_csrf_and_never_carry_global_admin(world: World) -> None:
    it = TestClient(world.app, base_url=BASE_URL)
    r = it.put("/api/v1/me", json={"time_zone": "UTC"}, headers={"Authorization": f"Bearer {world.it_token}"})
    assert r.status_code == 200, r.text
    # The Super admin who is a Global Administrator in this session: their API token is not.
    ga_client = world.clients["super_admin_ga"]
    created = ga_client.client.post("/api/v1/tokens", json={"name": "ga", "scopes": ["admin"]},
                                    headers={"X-CSRF-Token": ga_client.csrf})  # fmt: skip
    token = created.json()["token"]
    r = it.get("/api/v1/settings", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403 and "Global Administrator" in r.json()["detail"]
    # A cookie plus a foreign Bearer header: the Bearer wins, and a bad one is refused, not ignored.
    r = ga_client.client.get("/api/v1/me", headers={"Authorization": "Bearer es_not-a-token"})
    assert r.status_code == 401


# ---- sessions and cookies ------------------------------------------------------------------------------


def _set_cookie(r: Any) -> str:
    values = [v for k, v in r.headers.multi_items() if k.lower() == "set-cookie" and v.startswith(COOKIE + "=")]
    assert values, dict(r.headers)
    return str(values[-1])


def test_sign_in_rotates_the_session(client: TestClient, app_ctx: AppContext) -> None:
    add_account(app_ctx, "it@example.com", ["it_admin"])
    page = client.get("/signin")
    pre_cookie = client.cookies.get(COOKIE)
    pre_csrf = csrf_of(page.text)
    assert pre_cookie
    r = client.post("/signin", data={"csrf_token": pre_csrf, "email": "it@example.com", "password": PASSWORD},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    post_cookie = client.cookies.get(COOKIE)
    assert post_cookie and post_cookie != pre_cookie
    assert client.get("/api/v1/me").json()["csrf_token"] != pre_csrf
    # The pre-login cookie (what a fixation attacker planted) is still anonymous…
    fixated = TestClient(client.app)
    fixated.cookies.set(COOKIE, pre_cookie)
    assert fixated.get("/api/v1/me").status_code == 401
    # …and its CSRF token no longer works in the signed-in session.
    r = client.post("/api/v1/tokens", json={"name": "x"}, headers={"X-CSRF-Token": pre_csrf})
    assert r.status_code == 403


def test_sign_out_clears_the_cookie_and_sessions_expire(client: TestClient, app_ctx: AppContext) -> None:
    add_account(app_ctx, "it@example.com", ["it_admin"])
    csrf = sign_in_client(client, "it@example.com")
    r = client.post("/signout", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/signin"
    cookie = _set_cookie(r).lower()
    assert "max-age=0" in cookie or "expires=thu, 01 jan 1970" in cookie, cookie
    assert client.get("/api/v1/me").status_code == 401
    # A cookie older than the session lifetime is refused (the timestamp is inside the encrypted cookie).
    codec = client.app.state.codec  # type: ignore[attr-defined]
    pid = int(client.app.state.ctx.org_id())  # type: ignore[attr-defined]
    data = {"sid": "s", "csrf": "c", "iat": 0, "pid": 1, "org": pid, "ga": False}
    old = codec._fernet.encrypt_at_time(orjson.dumps(data), int(time.time()) - SESSION_TTL - 60).decode()
    stale = TestClient(client.app)
    stale.cookies.set(COOKIE, old)
    assert stale.get("/api/v1/me").status_code == 401
    fresh = TestClient(client.app)
    fresh.cookies.set(COOKIE, codec._fernet.encrypt(orjson.dumps(data)).decode())
    assert fresh.get("/api/v1/me").status_code == 200  # the same cookie, in time, works: the check is the age
    # A tampered cookie is anonymous, not an error.
    fresh.cookies.set(COOKIE, fresh.cookies.get(COOKIE)[:-4] + "AAAA")  # type: ignore[index]
    assert fresh.get("/api/v1/me").status_code == 401


def test_a_copied_cookie_stops_working_after_sign_out(client: TestClient, app_ctx: AppContext) -> None:
    add_account(app_ctx, "it@example.com", ["it_admin"])
    csrf = sign_in_client(client, "it@example.com")
    stolen = client.cookies.get(COOKIE)
    client.post("/signout", data={"csrf_token": csrf}, follow_redirects=False)
    thief = TestClient(client.app)
    thief.cookies.set(COOKIE, stolen)  # type: ignore[arg-type]
    assert thief.get("/api/v1/me").status_code == 401


def test_cookie_flags_http_and_https(env: dict[str, str]) -> None:
    for base, secure in (("http://testserver", False), ("https://entrasync.example", True)):
        ctx = make_ctx(env, base)
        add_account(ctx, f"it{int(secure)}@example.com", ["it_admin"])
        with TestClient(create_app(ctx), base_url=base.replace("entrasync.example", "testserver")) as c:
            page = c.get("/signin")
            for r in (page, c.post("/signin", data={"csrf_token": csrf_of(page.text), "password": PASSWORD,
                                                     "email": f"it{int(secure)}@example.com"},
                                   follow_redirects=False)):  # fmt: skip
                cookie = _set_cookie(r).lower()
                assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie, cookie
                assert ("; secure" in cookie) is secure, (base, cookie)
            assert ("strict-transport-security" in page.headers) is secure
        ctx.db.engine.dispose()


def test_sign_in_rate_limit(client: TestClient, app_ctx: AppContext) -> None:
    add_account(app_ctx, "it@example.com", ["it_admin"])
    add_account(app_ctx, "hr@example.com", ["super_admin"])
    csrf = csrf_of(client.get("/signin").text)

    def attempt(email: str, password: str) -> int:
        r = client.post("/signin", data={"csrf_token": csrf, "email": email, "password": password},
                        follow_redirects=False)  # fmt: skip
        return int(r.status_code)

    assert [attempt("it@example.com", f"wrong {i}") for i in range(10)] == [400] * 10
    # Case and spaces do not make a fresh bucket; the right password is refused while limited.
    assert attempt("  IT@Example.COM ", PASSWORD) == 429
    assert attempt("it@example.com", PASSWORD) == 429
    # Another account is not locked out by someone guessing this one.
    assert attempt("hr@example.com", PASSWORD) == 303


# ---- redirects -------------------------------------------------------------------------------------

EVIL_NEXT = [
    "//evil.example/x",
    "https://evil.example/x",
    "http:evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    " //evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "%2F%2Fevil.example",
    "/%2F%2Fevil.example",
    "%5C%5Cevil.example",
    "data:text/html,<script>alert(1)</script>",
    "///evil.example",
    "/./\\evil.example",
]


def _is_local(location: str) -> bool:
    parts = urlsplit(location)
    return (not parts.scheme and not parts.netloc and location.startswith("/") and not location.startswith("//")
            and "\\" not in location and not any(ch in location for ch in "\t\r\n "))  # fmt: skip


def test_sign_in_next_is_never_an_open_redirect(client: TestClient, app_ctx: AppContext) -> None:
    add_account(app_ctx, "it@example.com", ["it_admin"])
    for target in EVIL_NEXT:
        page = client.get("/signin", params={"next": target})
        kept = re.search(r'name="next" value="([^"]*)"', page.text)
        assert kept is None or kept.group(1) == "" or _is_local(html.unescape(kept.group(1))), (target, kept)
        assert "javascript:" not in page.text.lower(), target
        r = client.post("/signin", data={"csrf_token": csrf_of(page.text), "email": "it@example.com",
                                          "password": PASSWORD, "next": target}, follow_redirects=False)  # fmt: skip
        assert r.status_code == 303 and _is_local(r.headers["location"]), (target, r.headers["location"])
        client.cookies.clear()
    # A local next is kept (so the test above can fail).
    page = client.get("/signin", params={"next": "/people?status=all"})
    form = {"csrf_token": csrf_of(page.text), "email": "it@example.com", "password": PASSWORD,
            "next": "/people?status=all"}  # fmt: skip
    r = client.post("/signin", data=form, follow_redirects=False)
    assert r.headers["location"] == "/people?status=all"


def test_microsoft_sign_in_next_and_state(world: World) -> None:
    ga_id = next(iter(_ga_account(world)))
    for target in ["//evil.example", "https://evil.example", "/\\evil.example", "/people/" + str(world.ids["target"])]:
        c = TestClient(world.app, base_url=BASE_URL)
        csrf = csrf_of(c.get("/signin").text)
        started = c.post("/signin/microsoft", params={"next": target}, data={"csrf_token": csrf},
                         follow_redirects=False)  # fmt: skip
        r = microsoft_round_trip(c, started, world.emulator, ga_id)
        assert r.status_code == 303, r.text
        expected = target if target.startswith("/people/") else "/people"
        assert r.headers["location"] == expected, (target, r.headers["location"])
        assert c.get("/api/v1/me").json()["email"] == world.ga_upn

    # The state must match the flow this browser started; a mismatch or a replay signs nobody in.
    c = TestClient(world.app, base_url=BASE_URL)
    csrf = csrf_of(c.get("/signin").text)
    started = c.post("/signin/microsoft", data={"csrf_token": csrf}, follow_redirects=False)
    answer = at_microsoft(started.headers["location"], world.emulator, account=ga_id)
    back = urlsplit(answer.headers["location"])
    q = {k: v[0] for k, v in parse_qs(back.query).items()}
    forged = c.get("/auth/microsoft/callback", params={**q, "state": "forged"}, follow_redirects=False)
    assert forged.status_code in (400, 403) and c.get("/api/v1/me").status_code == 401
    replay = c.get("/auth/microsoft/callback", params=q, follow_redirects=False)
    assert replay.status_code == 403 and c.get("/api/v1/me").status_code == 401  # the flow was used up
    # Another browser cannot finish my flow with my code either.
    other = TestClient(world.app, base_url=BASE_URL)
    started = c.post("/signin/microsoft", data={"csrf_token": csrf_of(c.get("/signin").text)}, follow_redirects=False)
    answer = at_microsoft(started.headers["location"], world.emulator, account=ga_id)
    assert back_to_app(other, answer).status_code == 403 and other.get("/api/v1/me").status_code == 401


def _ga_account(world: World) -> list[str]:
    from entrasync.emulator.admin_client import AdminClient

    info = world.emulator.info
    with AdminClient(info.admin_url, info.ca_bundle) as admin:
        return [a["id"] for a in admin.tenant_summary()["admins"] if a["globalAdministrator"]]


def test_consent_state_must_match(world: World) -> None:
    """Connect → Microsoft → consent: a consent answer with another state, or for another tenant, is refused."""
    from entrasync.services import connection

    ga_id = _ga_account(world)[0]
    rc = world.clients["it_admin"]
    rc.client.delete("/api/v1/connection", headers={"X-CSRF-Token": rc.csrf})
    for tamper in ("state", "tenant", "none"):
        started = rc.client.post("/integrations/entra/connect", data={"csrf_token": rc.csrf}, follow_redirects=False)
        callback = microsoft_round_trip(rc.client, started, world.emulator, ga_id)
        assert callback.status_code == 303
        consent_url = callback.headers["location"]
        redirect_uri = parse_qs(urlsplit(consent_url).query)["redirect_uri"][0]
        assert redirect_uri == f"{BASE_URL}/integrations/entra/consented"
        answer = at_microsoft(consent_url, world.emulator, account=ga_id, decision="accept")
        back = urlsplit(answer.headers["location"])
        q = {k: v[0] for k, v in parse_qs(back.query).items()}
        if tamper == "state":
            q["state"] = q["state"][:-2] + "xx"
        elif tamper == "tenant":
            q["tenant"] = "00000000-0000-0000-0000-000000000000"
        r = rc.client.get(back.path, params=q, follow_redirects=False)
        connected = connection.status(world.ctx, world.org1).connected
        if tamper == "none":
            assert r.status_code == 303 and connected, r.text
        else:
            assert r.status_code in (400, 403) and not connected, (tamper, r.status_code)


def test_redirect_uris_come_from_the_public_base_url(world: World) -> None:
    """A forged Host header never reaches the redirect_uri sent to Microsoft."""
    evil = TestClient(world.app, base_url="http://evil.example")
    csrf = csrf_of(evil.get("/signin").text)
    r = evil.post("/signin/microsoft", data={"csrf_token": csrf}, follow_redirects=False,
                  headers={"X-Forwarded-Host": "evil.example", "Forwarded": "host=evil.example"})  # fmt: skip
    assert r.status_code == 303
    uri = parse_qs(urlsplit(r.headers["location"]).query)["redirect_uri"][0]
    assert uri == f"{BASE_URL}/auth/microsoft/callback"
    rc = world.clients["it_admin"]
    for path in ("/integrations/entra/connect", "/integrations/entra/elevate"):
        r = rc.client.post(path, data={"csrf_token": rc.csrf}, headers={"Host": "evil.example"}, follow_redirects=False)
        assert r.status_code == 303
        assert parse_qs(urlsplit(r.headers["location"]).query)["redirect_uri"][0].startswith(BASE_URL + "/")


def test_not_signed_in_redirect_keeps_next_local(client: TestClient) -> None:
    for path in ("/people?status=all", "/user-sync?tab=history", "/people/1"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303
        target = parse_qs(urlsplit(location_path(r)).query)["next"][0]
        assert target == path


def test_other_org_cannot_take_a_connected_tenant(world: World) -> None:
    """Bug found here: the deployment's app registration let any org's IT admin connect org 1's tenant
    (reading its directory) and made Sign in with Microsoft ambiguous between the two organisations."""
    rc = world.clients["other_org_admin"]
    info = world.emulator.info
    # Without the app registration's own client id and secret, headless connect is refused outright.
    r = rc.client.post("/api/v1/connection", json={"tenant_id": info.tenant_id}, headers={"X-CSRF-Token": rc.csrf})
    assert r.status_code == 422
    # Even with them, a tenant connected to another organisation stays with it.
    body = {"tenant_id": info.tenant_id, "client_id": info.client_id, "client_secret": info.client_secret}
    r = rc.client.post("/api/v1/connection", json=body, headers={"X-CSRF-Token": rc.csrf})
    assert r.status_code == 409 and "another organisation" in r.json()["detail"]
    r = rc.client.post(
        "/api/v1/connection", json={**body, "tenant_id": info.tenant_id.upper()}, headers={"X-CSRF-Token": rc.csrf}
    )
    assert r.status_code in (409, 422)
    assert rc.client.get("/api/v1/connection").json()["tenant_id"] == world.org2_tenant  # still its own tenant
    assert f"@{ORG1_DOMAIN}" not in rc.client.get("/api/v1/people?status=all&per_page=500").text


def test_recipient_must_be_a_super_admin_of_this_org(world: World) -> None:
    """Bug found by schemathesis: with notifications off the Recipient was not checked, so an unknown id
    was a 500 (foreign key) and another organisation's person could be stored."""
    rc = world.clients["it_admin"]
    h = {"X-CSRF-Token": rc.csrf}
    for rid in (2**31 - 1, int(world.org2_ids["admin"]), world.ids["employee"]):
        r = rc.client.put("/api/v1/settings", json={"notify": False, "recipient_id": rid}, headers=h)
        assert r.status_code == 422 and "recipient_id" in r.json()["errors"], (rid, r.text)
    r = rc.client.put("/api/v1/settings", json={"notify": False, "recipient_id": world.ids["super_admin"]}, headers=h)
    assert r.status_code == 200 and r.json()["settings"]["recipient_id"] == world.ids["super_admin"]
    form = {"csrf_token": rc.csrf, "strategy": "manual", "refresh_time": "07:00", "mode": "manual", "notify": "no",
            "guard_percent": "10", "recipient_id": str(world.org2_ids["admin"])}  # fmt: skip
    r = rc.client.post("/user-sync/settings", data=form, follow_redirects=False)
    assert r.status_code == 422 and "Super admin of this organisation" in r.text
