"""Deployment configuration from ``ENTRASYNC_*`` environment variables (documented in the README)."""

from __future__ import annotations

import contextlib
import os
import secrets
from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from entrasync.errors import ConfigurationError


class Config(BaseSettings):
    """What a deployment sets; everything an admin chooses in the product lives in the database."""

    model_config = SettingsConfigDict(env_prefix="ENTRASYNC_", extra="ignore")

    data_dir: Path = Field(default=Path("entrasync-data"), description="SQLite file, keys, emulator certs")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in data_dir")
    graph_url: str = "https://graph.microsoft.com"
    login_url: str = "https://login.microsoftonline.com"
    client_id: str | None = None
    client_secret: str | None = None
    client_certificate: Path | None = Field(
        default=None,
        description="PEM with the app registration's certificate and its private key (instead of a secret)",
    )
    ca_bundle: Path | None = None
    secret_key: str | None = Field(default=None, description="Encrypts stored secrets; generated if unset")
    public_base_url: str = "http://127.0.0.1:8000"
    org: str = Field(default="default", description="Organisation the CLI acts on")
    graph_timeout: float = 30.0
    graph_max_retry_seconds: float = 120.0
    graph_tenant_budget: str | None = Field(
        default=None, description="UNITS/SECONDS per tenant, instead of Graph's by tenant size (e.g. 8000/10)"
    )
    graph_app_budget: str | None = Field(default=None, description="UNITS/SECONDS for the app (default 150000/20)")
    lease_seconds: float = Field(default=30.0, description="A refresh whose process stops renewing fails after this")
    tick_seconds: int = Field(
        default=10, ge=1, le=60, description="Seconds between passes of the daily schedule and the dead-run sweep"
    )
    operator_token: str | None = Field(default=None, description="Bearer token of the operator API (/api/v1/operator)")
    auto_migrate: bool = Field(default=True, description="serve, worker and the CLI migrate the schema at start")
    webhook_allow_private: bool = Field(
        default=False, description="Deliver webhooks to loopback/link-local/private addresses (tests, closed networks)"
    )
    webhook_timeout: float = Field(default=10.0, description="Seconds a webhook receiver has to answer")

    @field_validator("client_certificate", "ca_bundle", "database_url", "client_id", "client_secret", "secret_key",
                     mode="before")  # fmt: skip
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """``ENTRASYNC_CA_BUNDLE=`` (empty) means "not set", not the current folder."""
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def client_credential(self) -> str | None:
        """The deployment's app credential: the certificate PEM's text if one is set, else the secret."""
        if self.client_certificate is None:
            return self.client_secret
        try:
            return self.client_certificate.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"Cannot read ENTRASYNC_CLIENT_CERTIFICATE ({self.client_certificate}): {exc}") from None

    def ensure_data_dir(self) -> Path:
        """The data folder, created private (0700) with a ``.gitignore`` of its own: it holds the SQLite
        file, the generated secret key and private keys, none of which belong in a repository."""
        path = self.data_dir
        if not path.exists():
            make_folder(path, "ENTRASYNC_DATA_DIR")
        ignore = path / ".gitignore"
        if not ignore.exists():
            with contextlib.suppress(OSError):  # a read-only data folder still works; the file is a courtesy
                ignore.write_text("# entrasync's data: database, secret key, certificates. Never commit it.\n*\n")
        return path

    @cached_property
    def effective_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            return url
        db = (self.ensure_data_dir() / "entrasync.sqlite3").resolve()
        if not db.exists():
            # Readable by its owner only (SQLite gives its -wal and -shm files the same mode).
            os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return f"sqlite:///{db}"

    @cached_property
    def effective_secret_key(self) -> str:
        """The key that encrypts stored secrets. Without ``ENTRASYNC_SECRET_KEY`` one is generated
        once into the data folder (mode 0600), which suits the embedded default only."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        self.ensure_data_dir()
        key = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key


def make_folder(path: Path, setting: str) -> None:
    """Create ``path`` private (0700) unless it is a folder already (left as it is), or say in one line
    why it cannot be and which setting to change."""
    if path.is_dir():
        return
    try:
        path.mkdir(parents=True, mode=0o700)
        os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot create the folder {path} ({exc.strerror or exc}): set {setting} to a folder entrasync may "
            "create and write to."
        ) from None
