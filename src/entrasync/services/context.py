"""The application context: configuration, database and secret box, built once per process, and the
actor every change is attributed to."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from entrasync.adapters.crypto import SecretBox
from entrasync.adapters.db.uow import Database, UnitOfWork
from entrasync.config import Config
from entrasync.errors import NotFoundError

DEFAULT_ORG = "default"


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
    db: Database
    box: SecretBox
    clock: Callable[[], datetime] = utcnow
    holder_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")

    @classmethod
    def create(cls, config: Config | None = None, *, run_migrations: bool = True) -> AppContext:
        """The context of a process; the schema is migrated first unless ``ENTRASYNC_AUTO_MIGRATE`` is off
        (then ``entrasync migrate`` does it, and serve and worker check it at start)."""
        config = config or Config()
        db = Database(config.effective_database_url)
        if run_migrations and config.auto_migrate:
            db.migrate()
        return cls(config=config, db=db, box=SecretBox(config.effective_secret_key))

    def now(self) -> datetime:
        return self.clock()

    def write(self) -> UnitOfWork:
        """A write transaction: ``with ctx.write() as uow: ...`` commits at the end, rolls back on error."""
        return self.db.write()

    def read(self) -> UnitOfWork:
        """A read-only snapshot."""
        return self.db.read()

    def org_id(self, slug: str | None = None) -> int:
        """The id of an organisation by slug (default ``ENTRASYNC_ORG``, else ``default``).

        Organisations are created by the operator (``entrasync org create``, §10); only the default one
        is created on first use, so the single-organisation install and the demo need no set-up.
        """
        slug = slug or self.config.org or DEFAULT_ORG
        with self.read() as uow:
            found = uow.orgs.id_by_slug(slug)
        if found is not None:
            return found
        if slug != DEFAULT_ORG:
            raise NotFoundError(
                f"There is no organisation '{slug}'. Check --org or ENTRASYNC_ORG; the operator creates "
                f"organisations with `entrasync org create --slug {slug} --name NAME`."
            )
        with self.write() as uow:
            found = uow.orgs.id_by_slug(slug)  # another process may have created it meanwhile
            return found if found is not None else uow.orgs.create(slug, "Default organisation", self.now())
