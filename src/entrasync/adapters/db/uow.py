"""The persistence boundary: a :class:`Database` hands out units of work, each one transaction with the
repositories that act in it (Cosmic Python, ch. 6). Services own every transaction through these;
nothing above the adapters touches SQL.

``db.write()`` begins a write transaction (``BEGIN IMMEDIATE`` on SQLite: the write lock up front, no
upgrade that could fail half-way) that commits when the block ends normally and rolls back on any
exception. ``db.read()`` is a read-only snapshot (``BEGIN DEFERRED`` on SQLite, so readers never queue
behind a writer; WAL gives them a consistent view), always rolled back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from types import TracebackType

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DataError, NoSuchModuleError, OperationalError

from entrasync.adapters.db.audit_repo import AuditRepo
from entrasync.adapters.db.auth_repo import AuthRepo
from entrasync.adapters.db.connection_repo import ConnectionRepo
from entrasync.adapters.db.directory_writer import DirectoryWriter
from entrasync.adapters.db.engine import make_engine, migrate, read_engine, schema_revision, widen_cache
from entrasync.adapters.db.events_repo import EventsRepo
from entrasync.adapters.db.graph_budget_repo import GraphBudgetRepo
from entrasync.adapters.db.jobs_repo import JobsRepo
from entrasync.adapters.db.notifications_repo import NotificationRepo
from entrasync.adapters.db.orgs_repo import OrgRepo
from entrasync.adapters.db.overrides_repo import OverrideRepo
from entrasync.adapters.db.people_pages_repo import PeoplePagesRepo
from entrasync.adapters.db.people_repo import PeopleRepo
from entrasync.adapters.db.plan_repo import PlanRepo
from entrasync.adapters.db.runs_repo import RunsRepo
from entrasync.adapters.db.settings_repo import SettingsRepo
from entrasync.adapters.db.sync_state_repo import SyncStateRepo
from entrasync.adapters.db.webhooks_repo import WebhooksRepo
from entrasync.errors import ConfigurationError, InputRefusedError


class Database:
    """One database (SQLite file or PostgreSQL): its engine, its migrations and its units of work."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine: Engine = make_engine(url)
        except (ArgumentError, NoSuchModuleError, ImportError):
            raise ConfigurationError(
                f"ENTRASYNC_DATABASE_URL is not a database entrasync can use ({_safe(url)}): give "
                "sqlite:///path/to/file.sqlite3 or postgresql://user@host/database."
            ) from None
        self.reader: Engine = read_engine(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        try:
            migrate(self.engine)
        except OperationalError as exc:
            raise ConfigurationError(_unreachable(self.url, exc)) from None

    def schema_revision(self) -> tuple[str | None, str]:
        """(the database's migration revision, the newest this code ships)."""
        return schema_revision(self.engine)

    def write(self) -> UnitOfWork:
        return UnitOfWork(self.engine, write=True)

    def read(self) -> UnitOfWork:
        return UnitOfWork(self.reader, write=False)

    def ping(self) -> None:
        """Raise if the database does not answer (health checks)."""
        with self.reader.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def _safe(url: str) -> str:
    """The URL as an error may show it: never a password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1][:200]


def _unreachable(url: str, exc: OperationalError) -> str:
    """What to fix when the database does not open, from the driver's answer (kept out of the message)."""
    text = str(exc.orig or exc).lower()
    where = _safe(url)
    if url.startswith("sqlite"):
        path = make_url(url).database or ""
        return (
            f"Cannot open the SQLite database {path}: its folder does not exist or is not writable. Create the "
            "folder (or set ENTRASYNC_DATA_DIR / ENTRASYNC_DATABASE_URL to one that exists)."
        )
    if "does not exist" in text and "database" in text:
        name = make_url(url).database
        return (
            f"The PostgreSQL database {name!r} does not exist ({where}). Create it (createdb {name}) or fix "
            "ENTRASYNC_DATABASE_URL."
        )
    if "password" in text or "authentication" in text:
        return f"PostgreSQL refused the credentials of ENTRASYNC_DATABASE_URL ({where}). Check the user and password."
    return f"Cannot reach the database {where}: is the server running, and is ENTRASYNC_DATABASE_URL right?"


class UnitOfWork:
    """One transaction and the repositories acting in it."""

    def __init__(self, engine: Engine, *, write: bool) -> None:
        self._engine = engine
        self.write = write
        self._conn: Connection | None = None
        self._cache_reset: str | None = None

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("a unit of work is used inside its `with` block only")
        return self._conn

    def __enter__(self) -> UnitOfWork:
        self._conn = self._engine.connect()
        try:
            self._conn.begin()
        except BaseException:
            self._conn.close()
            self._conn = None
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn = self.conn
        try:
            if exc_type is None and self.write:
                conn.commit()
            else:
                conn.rollback()
        finally:
            try:
                self._restore_cache(conn)
            finally:
                conn.close()
                self._conn = None
        if isinstance(exc, DataError):
            # Input the database cannot represent (NUL on PostgreSQL, a value out of range): the
            # caller's fault, said in words; nothing was stored.
            raise InputRefusedError("The database could not store or search for that value.") from exc

    def expect_rows(self, rows: int) -> None:
        """This transaction is about to write about ``rows`` rows: let the database prepare (a wider
        page cache on SQLite, for this transaction only; see adapters.db.engine.widen_cache)."""
        if self._cache_reset is None:
            self._cache_reset = widen_cache(self.conn, rows)

    def _restore_cache(self, conn: Connection) -> None:
        reset, self._cache_reset = self._cache_reset, None
        if reset is None:
            return
        try:
            conn.exec_driver_sql(reset)
        except sa.exc.SQLAlchemyError:  # never hides the error that ended the transaction
            conn.invalidate()  # a connection we cannot put back does not go back to the pool

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A part of the transaction that may fail alone: rolled back to here, the rest carries on."""
        nested = self.conn.begin_nested()
        try:
            yield
        except BaseException:
            nested.rollback()
            raise
        nested.commit()

    # -- repositories (made on first use; each holds this transaction's connection) ----------------

    @cached_property
    def orgs(self) -> OrgRepo:
        return OrgRepo(self.conn)

    @cached_property
    def people(self) -> PeopleRepo:
        return PeopleRepo(self.conn)

    @cached_property
    def plans(self) -> PlanRepo:
        return PlanRepo(self.conn)

    @cached_property
    def directory(self) -> DirectoryWriter:
        return DirectoryWriter(self.conn)

    @cached_property
    def runs(self) -> RunsRepo:
        return RunsRepo(self.conn)

    @cached_property
    def jobs(self) -> JobsRepo:
        return JobsRepo(self.conn)

    @cached_property
    def graph_budget(self) -> GraphBudgetRepo:
        return GraphBudgetRepo(self.conn)

    @cached_property
    def audit(self) -> AuditRepo:
        return AuditRepo(self.conn)

    @cached_property
    def settings(self) -> SettingsRepo:
        return SettingsRepo(self.conn)

    @cached_property
    def connections(self) -> ConnectionRepo:
        return ConnectionRepo(self.conn)

    @cached_property
    def sync_state(self) -> SyncStateRepo:
        return SyncStateRepo(self.conn)

    @cached_property
    def overrides(self) -> OverrideRepo:
        return OverrideRepo(self.conn)

    @cached_property
    def notifications(self) -> NotificationRepo:
        return NotificationRepo(self.conn)

    @cached_property
    def auth(self) -> AuthRepo:
        return AuthRepo(self.conn)

    @cached_property
    def events(self) -> EventsRepo:
        return EventsRepo(self.conn)

    @cached_property
    def webhooks(self) -> WebhooksRepo:
        return WebhooksRepo(self.conn)

    @cached_property
    def people_pages(self) -> PeoplePagesRepo:
        return PeoplePagesRepo(self.conn)
