"""Cancel on the emulator's sign-in page answers like Microsoft: a redirect with error=access_denied,
the cancel subcode, AADSTS65004 and the caller's state (the authorize and the admin-consent pages alike)."""

from __future__ import annotations

import ssl
from urllib.parse import parse_qs, urlsplit

import httpx

from entrasync.emulator.server import EmulatorInfo

REDIRECT = "http://localhost:8765/auth/callback"


def _client(info: EmulatorInfo) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=info.ca_bundle), trust_env=False)


def _cancelled(location: str) -> dict[str, list[str]]:
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == REDIRECT
    return parse_qs(parts.query)


def test_cancel_on_the_sign_in_page(info: EmulatorInfo) -> None:
    auth = f"{info.login_url}/{info.tenant_id}/oauth2/v2.0/authorize"
    params = {"client_id": info.client_id, "response_type": "code", "redirect_uri": REDIRECT, "scope": "openid",
              "state": "st-9", "nonce": "n-9"}  # fmt: skip
    with _client(info) as c:
        page = c.get(auth, params=params)
        assert 'name="decision" value="cancel"' in page.text
        r = c.post(auth, data={**params, "decision": "cancel"})
    assert r.status_code == 302
    q = _cancelled(r.headers["location"])
    assert q["error"] == ["access_denied"] and q["error_subcode"] == ["cancel"] and q["state"] == ["st-9"]
    assert q["error_description"][0].startswith("AADSTS65004")
    assert "code" not in q


def test_cancel_on_the_admin_consent_sign_in_page(info: EmulatorInfo) -> None:
    url = f"{info.login_url}/{info.tenant_id}/adminconsent"
    params = {"client_id": info.client_id, "redirect_uri": REDIRECT, "state": "st-10"}
    with _client(info) as c:
        r = c.post(url, data={**params, "decision": "cancel"})
    assert r.status_code == 302
    q = _cancelled(r.headers["location"])
    assert q["error"] == ["access_denied"] and q["state"] == ["st-10"] and "admin_consent" not in q
