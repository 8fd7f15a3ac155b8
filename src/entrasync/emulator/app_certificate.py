"""The demo app registration's certificate credential (PRODUCT.md §2: "client secret or certificate").

Entra ID accepts a client assertion (RFC 7523 JWT) signed with the private key of a certificate
uploaded to the app registration, naming the certificate by its thumbprint in the JWT header:
``x5t#S256`` (SHA-256) or the legacy ``x5t`` (SHA-1), base64url
(https://learn.microsoft.com/entra/identity-platform/certificate-credentials). The emulator writes one
such certificate with its key to the data folder, as the PEM file an admin would give entrasync.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class AppCertificate:
    path: Path  # PEM: the private key, then the certificate
    public_key: rsa.RSAPublicKey
    x5t: str  # base64url SHA-1 thumbprint
    x5t_s256: str  # base64url SHA-256 thumbprint


def thumbprints(cert: x509.Certificate) -> tuple[str, str]:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    return b64(cert.fingerprint(hashes.SHA1())), b64(cert.fingerprint(hashes.SHA256()))


def generate_app_certificate(data_dir: Path, app_name: str = "entrasync demo app") -> AppCertificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, app_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ) + cert.public_bytes(serialization.Encoding.PEM)
    path = Path(data_dir) / "app-credential.pem"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem)
    path.chmod(0o600)
    x5t, x5t_s256 = thumbprints(cert)
    return AppCertificate(path=path, public_key=key.public_key(), x5t=x5t, x5t_s256=x5t_s256)
