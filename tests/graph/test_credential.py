"""The app credential parser (adapters/graph/credential.py): secrets pass through untouched, a PEM is
checked the way Entra ID will use it, in whatever order and key format export tools write it."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from entrasync.adapters.graph.credential import CredentialError, is_certificate, msal_credential, parse_certificate

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NOW = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)


def _cert(not_after: dt.datetime) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "contoso sync")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(KEY.public_key())
        .serial_number(7).not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(not_after)
        .sign(KEY, hashes.SHA256())
    )  # fmt: skip
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key(fmt: serialization.PrivateFormat) -> str:
    return KEY.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def test_a_secret_is_not_a_certificate_and_passes_through() -> None:
    secret = "Abc8Q~x.y_z-0123456789abcdefghijklmnopqr"
    assert not is_certificate(secret)
    assert msal_credential(secret) == secret


@pytest.mark.parametrize("fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL])
@pytest.mark.parametrize("cert_first", [False, True])
def test_key_formats_and_order(fmt: serialization.PrivateFormat, cert_first: bool) -> None:
    key, cert = _key(fmt), _cert(NOW + dt.timedelta(days=90))
    text = "Bag Attributes: exported\n" + (cert + key if cert_first else key + cert)
    parsed = parse_certificate(text, now=NOW)
    assert parsed.cert_pem == cert and parsed.key_pem == key
    assert parsed.subject == "CN=contoso sync" and parsed.not_after == NOW + dt.timedelta(days=90)
    assert is_certificate(key + cert)


def test_expiry_is_checked_against_now() -> None:
    text = _key(serialization.PrivateFormat.PKCS8) + _cert(NOW + dt.timedelta(days=1))
    assert parse_certificate(text, now=NOW).not_after > NOW
    with pytest.raises(CredentialError, match="expired on 2026-11-29"):
        parse_certificate(text, now=NOW + dt.timedelta(days=2))


def test_empty_and_oversized_input() -> None:
    with pytest.raises(CredentialError, match="neither a private key nor a certificate"):
        parse_certificate("-----BEGIN NOTHING-----\n-----END NOTHING-----\n")
    with pytest.raises(CredentialError, match="longer than"):
        parse_certificate("-----BEGIN" + "x" * 30_000)
