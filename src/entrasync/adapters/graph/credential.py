"""The app registration's credential: a client secret, or a certificate with its private key.

PRODUCT.md §2: "tenant id + client id + client secret (or certificate)". A certificate comes as one
PEM text holding the private key and the certificate uploaded to the app registration (what
``openssl`` or Key Vault export gives). msal signs a client assertion with it
(https://learn.microsoft.com/entra/identity-platform/certificate-credentials). Either form is stored
encrypted as one value; a PEM is recognised by its ``-----BEGIN`` armour, which no client secret has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\s.*?-----END \1-----", re.DOTALL)
MAX_PEM = 20_000


class CredentialError(ValueError):
    """A certificate credential that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class CertificateCredential:
    key_pem: str
    cert_pem: str
    subject: str
    not_after: datetime


def is_certificate(value: str) -> bool:
    return value.lstrip().startswith("-----BEGIN")


def parse_certificate(text: str, *, now: datetime | None = None) -> CertificateCredential:
    """Check a PEM credential the way Entra will: an unencrypted RSA key, its certificate, in date."""
    # Imported here: x509 costs ~30 ms of every CLI process, and a client secret never needs it.
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if len(text) > MAX_PEM:
        raise CredentialError(
            f"The certificate PEM is longer than {MAX_PEM:,} characters; give one key and its certificate."
        )
    # One PEM block per kind (the first wins), each ending in a newline as PEM files do.
    blocks = {m.group(1): m.group(0) + "\n" for m in reversed(list(_BLOCK.finditer(text)))}
    if "ENCRYPTED PRIVATE KEY" in blocks:
        raise CredentialError(
            "The private key is encrypted. Give it unencrypted (e.g. `openssl pkey -in key.pem -out plain.pem`): "
            "entrasync stores the credential encrypted itself."
        )
    key_pem = blocks.get("PRIVATE KEY") or blocks.get("RSA PRIVATE KEY")
    cert_pem = blocks.get("CERTIFICATE")
    if key_pem is None or cert_pem is None:
        missing = (
            "neither a private key nor a certificate"
            if key_pem is None and cert_pem is None
            else ("no private key" if key_pem is None else "no certificate")
        )
        raise CredentialError(f"The PEM holds {missing}. Give one PEM with the private key and its certificate.")
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError):
        raise CredentialError("The private key in the PEM cannot be read.") from None
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError:
        raise CredentialError("The certificate in the PEM cannot be read.") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CredentialError("Microsoft Entra ID takes RSA certificates for app credentials; this key is not RSA.")
    if cert.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
        raise CredentialError("The private key does not belong to the certificate in the PEM.")
    now = now or datetime.now(UTC)
    if cert.not_valid_after_utc < now:
        raise CredentialError(
            f"The certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}. Upload a new one to the app "
            "registration and give it here."
        )
    return CertificateCredential(key_pem, cert_pem, cert.subject.rfc4514_string(), cert.not_valid_after_utc)


def msal_credential(value: str) -> str | dict[str, str]:
    """What msal's ``client_credential`` takes: the secret as is, or the certificate's key and PEM
    (msal then signs PS256 assertions naming the certificate by its SHA-256 thumbprint)."""
    if not is_certificate(value):
        return value
    cert = parse_certificate(value)
    return {"private_key": cert.key_pem, "public_certificate": cert.cert_pem}
