"""Connect with a certificate instead of a secret (PRODUCT.md §2 "client secret (or certificate)"),
through the CLI and the API, against the emulator's app registration; and every way a certificate can
be unusable gets a one-line error that says what to fix, with nothing stored."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from e2e_helpers import cli, people

from entrasync.adapters.db import tables as t
from entrasync.adapters.db.engine import make_engine
from entrasync.emulator.app_certificate import generate_app_certificate


def _env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != "ENTRASYNC_CLIENT_SECRET"}  # no secret anywhere


def _pem(key: Any, *, days: int = 30, other_key: Any = None, password: bytes | None = None) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test app")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key((other_key or key).public_key()).serial_number(1)
        .not_valid_before(now - dt.timedelta(days=400)).not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc).decode()
    return key_pem + cert.public_bytes(serialization.Encoding.PEM).decode()


def test_connect_with_the_app_certificate_then_refresh(env: dict[str, str], emulator: Any) -> None:
    env = _env(env)
    pem_path = emulator.info.client_certificate
    st = cli(env, "connect", "--tenant-id", emulator.info.tenant_id, "--certificate", pem_path)
    assert st["connected"] is True
    run = cli(env, "refresh")
    assert run["outcome"] == "applied" and run["counts"]["create"] > 0
    assert len(people(env)) == run["counts"]["create"]
    # Stored encrypted: the raw database holds no part of the private key.
    key_line = next(ln for ln in Path(pem_path).read_text().splitlines() if ln and not ln.startswith("-----"))
    engine = make_engine(env["ENTRASYNC_DATABASE_URL"])
    with engine.connect() as conn:
        stored = conn.execute(sa.select(t.connections.c.secret_enc)).scalar_one()
    engine.dispose()
    assert key_line.encode() not in (stored if isinstance(stored, bytes) else str(stored).encode())


def test_unusable_certificates_get_a_clear_error_and_nothing_is_stored(
    env: dict[str, str], emulator: Any, tmp_path: Path
) -> None:
    env = _env(env)
    tenant = emulator.info.tenant_id
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = {
        "expired.pem": (_pem(key, days=-1), "expired on"),
        "encrypted.pem": (_pem(key, password=b"pw"), "encrypted"),
        "mismatch.pem": (_pem(key, other_key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
                         "does not belong"),
        "ec.pem": (_pem(ec.generate_private_key(ec.SECP256R1())), "not RSA"),
        "cert-only.pem": (_pem(key).split("-----END PRIVATE KEY-----\n", 1)[1], "holds no private key"),
        "garbage.pem": ("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n" + _pem(key).split(
            "-----END PRIVATE KEY-----\n", 1)[1], "cannot be read"),
    }  # fmt: skip
    for name, (text, expected) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        res = cli(env, "connect", "--tenant-id", tenant, "--certificate", str(path), ok=False)
        assert res.exit_code != 0, name
        assert expected in res.stderr and res.stderr.count("\n") == 1, (name, res.stderr)
        assert "Traceback" not in res.stderr and "PRIVATE KEY" not in res.stderr
    res = cli(env, "connect", "--tenant-id", tenant, "--certificate", str(tmp_path / "missing.pem"), ok=False)
    assert res.exit_code != 0 and "cannot read the certificate file" in res.stderr
    # A valid certificate that was never uploaded to the app registration: Microsoft's answer, shown.
    generate_app_certificate(tmp_path / "other")
    res = cli(env, "connect", "--tenant-id", tenant, "--certificate", str(tmp_path / "other" / "app-credential.pem"),
              ok=False)  # fmt: skip
    assert res.exit_code != 0 and "AADSTS700027" in res.stderr, res.stderr
    engine = make_engine(env["ENTRASYNC_DATABASE_URL"])
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.connections)).scalar_one() == 0
    engine.dispose()
    st = cli(env, "connect", "--tenant-id", tenant, "--certificate", emulator.info.client_certificate)
    assert st["connected"] is True
