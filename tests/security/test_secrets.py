"""Issue 6 part 5: secrets and tokens are encrypted at rest and never logged.

Everything runs with ALL logging captured at DEBUG (SQLAlchemy's statement log included, so SQL
parameters are scanned too): building the world (headless connect, a refresh, local sign-ins, a Super
admin's Microsoft sign-in), then Connect through Microsoft with admin consent in the web UI, a refresh
through the API with a Bearer token, Sign in with Microsoft, and an API token's use. Then every text
and binary column of every table is read raw (compressed blobs unpacked) and searched.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import logging
import lzma
import os
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import zstandard
from fastapi.testclient import TestClient
from tests.security.conftest import BASE_URL, build_world, connect_through_microsoft, microsoft_round_trip
from tests.web.conftest import PASSWORD, csrf_of

from entrasync.adapters.db import tables as t
from entrasync.services import connection

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}")
BEARER = re.compile(r"bearer\s+[A-Za-z0-9._~+/-]{16,}", re.IGNORECASE)
# Not the product: the emulator (a stand-in for Microsoft) and the test's own HTTP client.
NOT_THE_PRODUCT = ("entrasync.emulator", "uvicorn", "httpx", "httpcore")


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(NOT_THE_PRODUCT):
            return
        try:
            text = record.getMessage()
        except Exception:  # a broken format string still has its parts
            text = f"{record.msg} {record.args}"
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append((record.name, text))


@contextmanager
def all_logging_at_debug() -> Iterator[Capture]:
    root = logging.getLogger()
    handler = Capture()
    saved = root.level
    saved_levels = {name: lg.level for name, lg in logging.root.manager.loggerDict.items()
                    if isinstance(lg, logging.Logger)}  # fmt: skip
    root.setLevel(logging.DEBUG)
    for name in saved_levels:
        logging.getLogger(name).setLevel(logging.NOTSET)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(saved)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


def _unpack(blob: bytes) -> list[str]:
    out = [blob.decode("latin-1")]
    zstd = zstandard.ZstdDecompressor().decompress
    for opener in (zstd, zlib.decompress, gzip.decompress, lzma.decompress, bz2.decompress):
        try:
            out.append(opener(blob).decode("latin-1"))
        except Exception:  # not this format
            continue
    return out


def _raw_values(engine: sa.Engine) -> Iterator[tuple[str, str, str]]:
    """(table, column, text) for every text or binary value in the database (reflected, not our model)."""
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(sa.select(table)):
                for col, value in row._mapping.items():
                    if isinstance(value, memoryview):
                        value = bytes(value)
                    if isinstance(value, bytes):
                        for text in _unpack(value):
                            yield table.name, str(col), text
                    elif isinstance(value, str):
                        yield table.name, str(col), value
                    elif isinstance(value, (dict, list)):
                        yield table.name, str(col), repr(value)


def _leaks(text: str, secrets_: dict[str, str]) -> list[str]:
    found = [name for name, secret in secrets_.items() if secret and secret in text]
    if JWT.search(text):
        found.append("a JWT (access or ID token)")
    if BEARER.search(text):
        found.append("a Bearer header")
    return found


@pytest.mark.parametrize("credential", ["secret", "certificate"])
def test_secrets_are_encrypted_at_rest_and_never_logged(
    env: dict[str, str], emulator: Any, admin: Any, credential: str
) -> None:
    """With the deployment's app registration using a client secret, or a certificate (the consent
    flow then stores the certificate PEM as the org's credential)."""
    info = emulator.info
    pem = Path(info.client_certificate).read_text()
    if credential == "certificate":
        env = {k: v for k, v in env.items() if k != "ENTRASYNC_CLIENT_SECRET"}
        env["ENTRASYNC_CLIENT_CERTIFICATE"] = info.client_certificate
    key_body = "".join(ln for ln in pem.split("-----END PRIVATE KEY-----")[0].splitlines() if not ln.startswith("-"))
    with all_logging_at_debug() as logs:
        world = build_world(env, emulator, admin)
        ga_id = next(a["id"] for a in admin.tenant_summary()["admins"] if a["globalAdministrator"])
        it = world.clients["it_admin"]
        # Connect again, this time through Microsoft with admin consent, as in the UI.
        assert it.client.delete("/api/v1/connection", headers={"X-CSRF-Token": it.csrf}).status_code == 200
        r = connect_through_microsoft(it.client, it.csrf, emulator, ga_id)
        assert r.status_code == 303 and connection.status(world.ctx, world.org1).connected, r.text
        # A refresh through the API with a personal token (reads Graph with a fresh access token).
        bearer = {"Authorization": f"Bearer {world.it_token}"}
        anon = TestClient(world.app, base_url=BASE_URL)
        run = anon.post("/api/v1/refresh", headers=bearer)
        assert run.status_code == 200 and run.json()["outcome"] in ("awaiting_review", "applied"), run.text
        assert anon.get("/api/v1/runs", headers=bearer).status_code == 200
        # A token created through the API, then used; a wrong token refused.
        created = it.client.post("/api/v1/tokens", json={"name": "ci", "scopes": ["write"]},
                                 headers={"X-CSRF-Token": it.csrf}).json()  # fmt: skip
        api_token = created["token"]
        assert anon.get("/api/v1/me", headers={"Authorization": f"Bearer {api_token}"}).status_code == 200
        assert anon.get("/api/v1/me", headers={"Authorization": "Bearer es_wrong-token-value"}).status_code == 401
        # Sign in with Microsoft, and a failed local sign-in with a near-miss of the password.
        c = TestClient(world.app, base_url=BASE_URL)
        csrf = csrf_of(c.get("/signin").text)
        started = c.post("/signin/microsoft", data={"csrf_token": csrf}, follow_redirects=False)
        assert microsoft_round_trip(c, started, emulator, ga_id).status_code == 303
        c2 = TestClient(world.app, base_url=BASE_URL)
        c2.post("/signin", data={"csrf_token": csrf_of(c2.get("/signin").text), "email": f"it@{'org-one.example'}",
                                 "password": PASSWORD + "!"})  # fmt: skip
        if world.runner is not None:
            world.runner.stop()
        world.ctx.db.engine.dispose()

    secrets_ = {
        "client secret": info.client_secret,
        "private key (first line)": key_body[:64],
        "private key (a middle line)": key_body[640:704],
        "password": PASSWORD,
        "API token (matrix)": world.it_token,
        "API token (ci)": api_token,
        "secret key": env["ENTRASYNC_SECRET_KEY"],
    }
    print(f"\nlog records scanned: {len(logs.lines)} from {sorted({n.split('.')[0] for n, _ in logs.lines})}")
    assert len(logs.lines) > 100, "the capture saw (almost) nothing: is logging really at DEBUG?"
    assert any(name.startswith("sqlalchemy") for name, _ in logs.lines), "SQL statements were not captured"
    log_leaks = [f"{name}: {leak}: {text[:160]!r}" for name, text in logs.lines for leak in _leaks(text, secrets_)]
    assert not log_leaks, "secrets in the logs:\n" + "\n".join(log_leaks[:20])

    db_leaks: list[str] = []
    columns: set[tuple[str, str]] = set()
    for table, col, text in _raw_values(world.ctx.db.engine):
        columns.add((table, col))
        db_leaks += [f"{table}.{col}: {leak}" for leak in _leaks(text, secrets_)]
    assert not db_leaks, "secrets in clear in the database:\n" + "\n".join(sorted(set(db_leaks)))
    assert ("connections", "secret_enc") in columns and ("api_tokens", "token_hash") in columns, sorted(columns)

    # API tokens are stored only as their SHA-256; the client secret only as a Fernet token we can open.
    with world.ctx.db.engine.connect() as conn:
        hashes = set(conn.execute(sa.select(t.api_tokens.c.token_hash)).scalars())
        sealed = conn.execute(
            sa.select(t.connections.c.secret_enc).where(t.connections.c.org_id == world.org1)
        ).scalar_one()
    for token in (world.it_token, api_token):
        assert hashlib.sha256(token.encode()).hexdigest() in hashes
    assert world.ctx.box.open(bytes(sealed)) == (info.client_secret if credential == "secret" else pem)
    # Never shown back either.
    shown = it.client.get("/api/v1/connection").text + it.client.get("/integrations").text
    assert info.client_secret not in shown
    assert world.it_token not in it.client.get("/me").text


def test_passwords_are_hashed_at_full_cost(env: dict[str, str]) -> None:
    """The suite hashes at the lowest cost in its own process (tests/conftest.py); the product never
    does: an account created by the CLI, in a process of its own, stores argon2id at t=3, m=64 MiB, p=4."""
    import subprocess
    import sys

    done = subprocess.run(
        [str(Path(sys.executable).parent / "entrasync"), "admin", "create", "--email", "full.cost@example.com",
         "--role",
         "super_admin", "--json"],
        env={**os.environ, **env, "ENTRASYNC_ADMIN_PASSWORD": "a-long-enough-password"}, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    engine = sa.create_engine(env["ENTRASYNC_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            stored = conn.execute(
                sa.select(t.people.c.password_hash).where(t.people.c.email == "full.cost@example.com")
            ).scalar_one()
    finally:
        engine.dispose()
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), stored[:40]
