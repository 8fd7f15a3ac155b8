"""Certificate credentials at the emulator's token endpoint, as msal sends them (a client assertion:
https://learn.microsoft.com/entra/identity-platform/certificate-credentials, RFC 7523)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from entrasync.emulator.app_certificate import generate_app_certificate, thumbprints
from entrasync.emulator.identity import JWT_BEARER

SCOPE = ["https://graph.microsoft.com/.default"]


def _session(ca: str) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.verify = ca
    return s


def _split(pem: bytes) -> tuple[str, str]:
    text = pem.decode()
    cut = text.index("-----BEGIN CERTIFICATE-----")
    return text[:cut], text[cut:]


def _msal(info: Any, key_pem: str, cert_pem: str) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        info.client_id,
        client_credential={"private_key": key_pem, "public_certificate": cert_pem},
        authority=f"{info.login_url}/{info.tenant_id}",
        instance_discovery=False,
        http_client=_session(info.ca_bundle),
    )


def test_msal_certificate_credential_gets_an_app_token(emulator: Any) -> None:
    info = emulator.info
    key_pem, cert_pem = _split(Path(info.client_certificate).read_bytes())
    result = _msal(info, key_pem, cert_pem).acquire_token_for_client(scopes=SCOPE)
    assert "access_token" in result, result
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["appid"] == info.client_id and claims["roles"]


def test_unregistered_certificate_is_refused_with_entras_code(emulator: Any, tmp_path: Path) -> None:
    info = emulator.info
    other = generate_app_certificate(tmp_path)  # a certificate never uploaded to the app registration
    key_pem, cert_pem = _split(other.path.read_bytes())
    result = _msal(info, key_pem, cert_pem).acquire_token_for_client(scopes=SCOPE)
    assert result.get("error") == "invalid_client", result
    assert "AADSTS700027" in result["error_description"] and other.x5t_s256 in result["error_description"]


def test_assertion_checks_audience_lifetime_and_issuer(emulator: Any) -> None:
    info = emulator.info
    key_pem, cert_pem = _split(Path(info.client_certificate).read_bytes())
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    _, s256 = thumbprints(x509.load_pem_x509_certificate(cert_pem.encode()))
    endpoint = f"{info.login_url}/{info.tenant_id}/oauth2/v2.0/token"
    now = int(time.time())

    def token_with(**claims: Any) -> dict[str, Any]:
        body = {"aud": endpoint, "iss": info.client_id, "sub": info.client_id, "nbf": now, "exp": now + 600,
                "jti": str(now), **claims}  # fmt: skip
        assertion = jwt.encode(body, key, algorithm="PS256", headers={"x5t#S256": s256})  # type: ignore[arg-type]
        form = {"client_id": info.client_id, "grant_type": "client_credentials", "scope": SCOPE[0],
                "client_assertion_type": JWT_BEARER, "client_assertion": assertion}  # fmt: skip
        r = _session(info.ca_bundle).post(endpoint, data=form, timeout=10)
        return {"status": r.status_code, **r.json()}

    assert "access_token" in token_with()
    expired = token_with(nbf=now - 7200, exp=now - 3600)
    assert expired["status"] == 401 and "AADSTS700024" in expired["error_description"]
    wrong_aud = token_with(aud="https://elsewhere.example/token")
    assert wrong_aud["status"] == 401 and wrong_aud["error"] == "invalid_client"
    wrong_iss = token_with(iss="00000000-0000-0000-0000-000000000001", sub="00000000-0000-0000-0000-000000000001")
    assert wrong_iss["status"] == 401 and "AADSTS700021" in wrong_iss["error_description"]
