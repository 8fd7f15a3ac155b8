"""The application context: configuration, database and secret box, built once per process."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from entrasync.adapters.crypto import SecretBox
from entrasync.adapters.db import tables as t
from entrasync.adapters.db.engine import make_engine, migrate, read_engine
from entrasync.config import Config


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something, for the audit log (a person, a sync run, or the command line), and what
    they may grant: ``super_admin`` may grant or remove the Super admin role; ``integrator`` (an IT admin,
    or a Super admin signed in at Microsoft as a Global Administrator: the rights that set up the sync,
    §2) may grant or remove the IT admin role (§1)."""

    label: str
    person_id: int | None = None
    run_id: int | None = None
    super_admin: bool = False
    integrator: bool = False

    @staticmethod
    def cli() -> Actor:
        """The command line runs on the deployment itself, with its database: the operator's full rights."""
        return Actor(label="cli", super_admin=True, integrator=True)


@dataclass
class AppContext:
    config: Config
    engine: Engine
    box: SecretBox
    clock: Callable[[], datetime] = utcnow
    holder_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")

    @classmethod
    def create(cls, config: Config | None = None, *, run_migrations: bool = True) -> AppContext:
        config = config or Config()
        engine = make_engine(config.effective_database_url)
        if run_migrations:
            migrate(engine)
        return cls(config=config, engine=engine, box=SecretBox(config.effective_secret_key))

    def now(self) -> datetime:
        return self.clock()

    @property
    def reader(self) -> Engine:
        """Use ``ctx.reader.connect()`` to read and ``ctx.engine.begin()`` to write."""
        return read_engine(self.engine)

    def org_id(self, slug: str | None = None, *, create: bool = True) -> int:
        """The id of an organisation by slug (the CLI's default org is created on first use)."""
        slug = slug or self.config.org
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(t.organisations.c.id).where(t.organisations.c.slug == slug)).first()
            if row:
                return int(row[0])
            if not create:
                from entrasync.errors import NotFoundError

                raise NotFoundError(f"No organisation '{slug}'.")
            return ensure_org(conn, slug, self.now())


def ensure_org(conn: Connection, slug: str, now: datetime, name: str | None = None) -> int:
    org_id = conn.execute(
        sa.insert(t.organisations).values(
            slug=slug, name=name or slug.title(), time_zone="UTC", directory_version=0, created_at=now
        )
    ).inserted_primary_key
    assert org_id is not None
    oid = int(org_id[0])
    conn.execute(
        sa.insert(t.sync_settings).values(
            org_id=oid,
            strategy="manual",
            refresh_time="07:00",
            time_zone="UTC",
            mode="auto",
            notify=False,
            graph_filter_on=False,
            graph_filter="",
            email_filter_on=False,
            email_include=[],
            email_exclude=[],
            group_filter_on=False,
            group_ids=[],
            guard_percent=10.0,
            updated_at=now,
            effective_from=now,
        )
    )
    return oid


def lock_org(conn: Connection, org_id: int) -> int:
    """Serialise directory writers of one org and return the new directory version.

    Every transaction that changes people bumps the version first: the UPDATE takes the org row's
    lock (PostgreSQL) or the database write lock (SQLite), so a plan computed under it cannot race
    with a hand edit, and a plan computed earlier is recognisably stale.
    """
    conn.execute(
        sa.update(t.organisations)
        .where(t.organisations.c.id == org_id)
        .values(directory_version=t.organisations.c.directory_version + 1)
    )
    return int(
        conn.execute(sa.select(t.organisations.c.directory_version).where(t.organisations.c.id == org_id)).scalar_one()
    )


def directory_version(conn: Connection, org_id: int) -> int:
    return int(
        conn.execute(sa.select(t.organisations.c.directory_version).where(t.organisations.c.id == org_id)).scalar_one()
    )
