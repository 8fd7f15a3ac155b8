"""The §1 data model as SQLAlchemy Core tables.

Core rather than ORM: the sync writes tens of thousands of rows per run and reads the whole directory
into plain records for the planner, so bulk statements are the natural unit. Every row carries
``org_id`` so one deployment serves many organisations; every query filters on it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

from entrasync.domain import fields

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores them naive; we read them back as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


TS = UTCDateTime()


class ISODate(TypeDecorator[str]):
    """A DATE column whose Python value is its ISO text (``"2021-03-15"``), as the domain holds dates:
    plans, mirrors and events carry it as JSON unchanged."""

    impl = Date
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> date | None:
        if value is None or isinstance(value, date):
            return value
        return date.fromisoformat(str(value)[:10])

    def process_result_value(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return value.isoformat() if isinstance(value, date) else str(value)[:10]


def more_of_entra_columns() -> list[Column[Any]]:
    """The people columns of the mapped fields added in issue 16 (0010_more_of_entra), from domain.fields."""
    out: list[Column[Any]] = []
    start = fields.INDEX["start_date"]
    for f in fields.FIELDS[start:]:
        if f.kind is fields.FieldKind.DATE:
            out.append(Column(f.name, ISODate()))
        elif f.kind is fields.FieldKind.LIST:
            out.append(Column(f.name, JSON))
        else:
            out.append(Column(f.name, String(f.limit)))
    return out


organisations = Table(
    "organisations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("time_zone", String(64), nullable=False, default="UTC"),
    # Bumped by every change to people; a plan records the version it was computed from.
    Column("directory_version", Integer, nullable=False, default=0),
    Column("created_at", TS, nullable=False),
    Column("last_tenant_id", String(256)),  # the Entra tenant last connected (kept after a disconnect)
)

# The predicate of ix_people_unfolded, as each database writes it (queries repeat it word for word).
UNFOLDED_SQLITE = "email_lower GLOB '*[^ -~]*'"
UNFOLDED_PG = "email_lower ~ '[^ -~]'"

people = Table(
    "people",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", Integer, ForeignKey("organisations.id"), nullable=False),
    Column("entra_id", String(64)),
    Column("email", String(320), nullable=False),
    Column("email_lower", String(320), nullable=False),
    Column("user_principal_name", String(320)),
    Column("display_name", String(256)),
    Column("given_name", String(128)),
    Column("surname", String(128)),
    Column("job_title", String(256)),
    Column("employee_id", String(64)),
    Column("office_location", String(256)),
    # More of Entra (spec §12) and the admin's custom fields: columns generated from domain.fields below.
    *more_of_entra_columns(),
    # Deferrable: an apply checks it at commit, after analysing (migration 0012).
    Column("manager_id", Integer, ForeignKey("people.id", ondelete="SET NULL", deferrable=True, initially="IMMEDIATE")),
    Column("status", String(16), nullable=False, default="active"),
    Column("source", String(16), nullable=False, default="manual"),
    Column("time_zone", String(64)),
    # JSON list of synced fields changed by hand since the sync last wrote them.
    Column("manual_fields", JSON, nullable=False, default=list),
    Column("password_hash", String(256)),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("last_synced_at", TS),
    Column("archived_at", TS),
    # The organisation's directory version at this person's last change (a plan is stale for them after).
    Column("version", Integer, nullable=False, server_default="0"),
    Column("sessions_since", TS),  # sessions that began before it are over (a password reset ends them)
    UniqueConstraint("org_id", "email_lower", name="uq_people_org_email"),
    UniqueConstraint("org_id", "entra_id", name="uq_people_org_entra"),
    Index("ix_people_org_status", "org_id", "status", "display_name"),
    Index("ix_people_manager", "manager_id"),
    Index("ix_people_org_name", "org_id", "display_name", "id"),
    # The API's exact look-ups and ``updated_since`` (spec §11 "Reading the directory").
    Index("ix_people_org_employee", "org_id", "employee_id"),
    Index("ix_people_org_updated", "org_id", "updated_at"),
    # Local accounts by e-mail across organisations (sign-in without a slug, §10); synced people have
    # no password, so the index stays as small as the number of local accounts.
    Index(
        "ix_people_local_accounts",
        "email_lower",
        sqlite_where=text("password_hash IS NOT NULL"),
        postgresql_where=text("password_hash IS NOT NULL"),
    ),
    # People whose e-mail holds a character outside printable ASCII (ß, ς, µ: lower() and casefold() may
    # differ): a churn round's neighbourhood always plans them (people_records.unfolded_ids). A few
    # rows at most, so the round reads them without scanning every e-mail of the org.
    Index("ix_people_unfolded", "org_id", sqlite_where=text(UNFOLDED_SQLITE), postgresql_where=text(UNFOLDED_PG)),
)

person_roles = Table(
    "person_roles",
    metadata,
    Column("person_id", Integer, ForeignKey("people.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(32), primary_key=True),
)

departments = Table(
    "departments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", Integer, ForeignKey("organisations.id"), nullable=False),
    Column("name", String(256), nullable=False),
    UniqueConstraint("org_id", "name", name="uq_departments_org_name"),
)

person_departments = Table(
    "person_departments",
    metadata,
    Column("person_id", Integer, ForeignKey("people.id", ondelete="CASCADE"), primary_key=True),
    Column("department_id", Integer, ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_person_departments_department", "department_id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", Integer, ForeignKey("organisations.id"), nullable=False),
    Column("at", TS, nullable=False),
    Column("actor_person_id", Integer),
    Column("actor_run_id", Integer),
    Column("actor", String(320), nullable=False),  # "alice@contoso.com", "sync run 12", "cli"
    Column("entity", String(32), nullable=False),  # person | settings | connection
    Column("person_id", Integer),
    Column("action", String(32), nullable=False),  # create | update | archive | restore | link | set | ...
    Column("field", String(64)),
    Column("old", Text),
    Column("new", Text),
    Index("ix_audit_org_person", "org_id", "person_id", "id"),
    Index("ix_audit_org_id", "org_id", "id"),
)

connections = Table(
    "connections",
    metadata,
    Column("org_id", Integer, ForeignKey("organisations.id"), primary_key=True),
    Column("tenant_id", String(256), nullable=False, unique=True),  # one organisation per tenant (GUID or domain)
    Column("client_id", String(64), nullable=False),
    Column("secret_enc", LargeBinary),  # Fernet token; never stored or shown in clear
    Column("certificate_enc", LargeBinary),
    Column("connected_at", TS, nullable=False),
    Column("connected_by", String(320), nullable=False),
    Column("last_error", Text),
    # The last Graph access token, sealed with the digest of the credential it was issued for, and
    # when it expires (adapters.graph.auth.TokenStore; migration 0015). Never shown, never logged.
    Column("token_enc", LargeBinary),
    Column("token_expires_at", TS),
)

sync_state = Table(
    "sync_state",
    metadata,
    Column("org_id", Integer, ForeignKey("organisations.id"), primary_key=True),
    # The current delta link (see adapters.graph.reader.DeltaCursor); the mirror is in sync_mirrors, so
    # an unchanged round rewrites and reads only this small row. A row here always has its mirror.
    Column("delta_link", Text),
    Column("graph_filter", Text),  # the filter the cursor was read with
    Column("updated_at", TS, nullable=False),
    # JSON of domain.rest.Rest: what the last clean run left (None: plan in full next time).
    Column("rest", Text),
    # Digest of the attribute mapping the mirror was read with (a changed mapping means a full read).
    Column("mapping_digest", String(64)),
)

# The compressed mirror of Entra the delta rounds merge into (adapters.db.sync_state_repo.dump).
sync_mirrors = Table(
    "sync_mirrors",
    metadata,
    Column("org_id", Integer, ForeignKey("organisations.id"), primary_key=True),
    Column("cursor", LargeBinary, nullable=False),
)

# Delta rounds' changes to the mirror, applied on it in ``seq`` order (adapters.db.mirror_patches): a
# churn round writes the users it touched, not the whole mirror again. ``users``: how many it holds.
sync_mirror_patches = Table(
    "sync_mirror_patches",
    metadata,
    Column("org_id", Integer, ForeignKey("organisations.id"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("users", Integer, nullable=False),
    Column("patch", LargeBinary, nullable=False),
)

sync_settings = Table(
    "sync_settings",
    metadata,
    Column("org_id", Integer, ForeignKey("organisations.id"), primary_key=True),
    Column("strategy", String(16), nullable=False, default="manual"),  # manual | daily
    Column("refresh_time", String(5), nullable=False, default="07:00"),
    Column("time_zone", String(64), nullable=False, default="UTC"),
    Column("mode", String(16), nullable=False, default="auto"),  # manual | auto
    Column("notify", Boolean, nullable=False, default=False),
    Column("recipient_id", Integer, ForeignKey("people.id", ondelete="SET NULL")),
    Column("graph_filter_on", Boolean, nullable=False, default=False),
    Column("graph_filter", Text, nullable=False, default=""),
    Column("email_filter_on", Boolean, nullable=False, default=False),
    Column("email_include", JSON, nullable=False, default=list),
    Column("email_exclude", JSON, nullable=False, default=list),
    Column("group_filter_on", Boolean, nullable=False, default=False),
    Column("group_ids", JSON, nullable=False, default=list),
    Column("guard_percent", Float, nullable=False, default=10.0),
    Column("manual_people", String(16), nullable=False, server_default="archive"),  # archive | keep
    Column("link_by", String(16), nullable=False, server_default="email"),  # email | employee_id
    Column("mapping", JSON, nullable=False, server_default="{}"),  # differences from the default mapping
    Column("updated_at", TS, nullable=False),
    # Slots before this instant never fire: a changed time/zone applies from the save on.
    Column("effective_from", TS, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", Integer, ForeignKey("organisations.id"), nullable=False),
    Column("trigger", String(16), nullable=False),  # button | schedule | cli | api
    Column("triggered_by", String(320)),
    Column("started_at", TS, nullable=False),
    Column("finished_at", TS),
    Column("outcome", String(20)),  # running | applied | awaiting_review | held | failed | no_changes
    Column("plan_state", String(16)),  # pending | applied | superseded | none
    Column("counts", JSON, nullable=False, default=dict),
    Column("graph_requests", Integer, nullable=False, default=0),
    Column("read_mode", String(8)),
    Column("error", Text),
    Column("hold_reason", Text),
    Column("base_version", Integer),
    Column("progress", JSON, nullable=False, default=dict),
    # What became of the plan: applied counts per kind plus "rejected" and "overridden"; who and when.
    Column("applied_counts", JSON),
    Column("applied_by", String(320)),
    Column("applied_at", TS),
    # A scheduled run's slot instant: unique per org, which makes each slot run exactly once.
    Column("slot_at", TS),
    # The process working on the run ("host:pid:nonce") and until when its lease holds; a run that is
    # queued has neither. A lease that runs out marks the run failed (services.refresh_jobs).
    Column("claimed_by", String(128)),
    Column("lease_expires_at", TS),
    # The Procrastinate job that carries a queued run (PostgreSQL; none on SQLite or from the CLI).
    Column("job_id", BigInteger),
    # A scheduled run whose process died is tried again (services.refresh_jobs.sweep): the new run names
    # the dead one (at most one retry each) and counts the attempts; the slot stays on the first.
    Column("attempt", Integer, nullable=False, default=1, server_default="1"),
    Column("retry_of", Integer),
    UniqueConstraint("org_id", "slot_at", name="uq_runs_org_slot"),
    UniqueConstraint("retry_of", name="uq_runs_retry_of"),
    Index("ix_runs_org_id", "org_id", "id"),
    # One refresh per organisation queued or running at a time (§4, §10), enforced by the database.
    Index(
        "uq_runs_active_org",
        "org_id",
        unique=True,
        sqlite_where=text("outcome = 'running'"),
        postgresql_where=text("outcome = 'running'"),
    ),
)

# Graph resource units spent per budget ("tenant:{id}", "app:{client id}") in the current fixed window,
# shared by every worker (services.graph_budget, domain.graph_budget).
graph_budget = Table(
    "graph_budget",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("window_start", TS, nullable=False),
    Column("used", Integer, nullable=False),
    # After a 429 from this tenant: nobody spends from this budget before then.
    Column("blocked_until", TS),
)

plan_changes = Table(
    "plan_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("org_id", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("subject", String(400), nullable=False),  # p:<person id>, e:<entra id>, m:<e-mail> (conflicts)
    Column("person_id", Integer),
    Column("entra_id", String(64)),
    Column("reason", String(32), nullable=False),
    Column("display_name", String(256)),
    Column("email", String(320)),
    Column("diffs", JSON, nullable=False, default=list),
    Column("target", JSON),
    Column("fingerprint", String(64), nullable=False),
    # pending | accepted | rejected | overridden (suppressed by an earlier rejection) | kept | conflict
    Column("decision", String(16), nullable=False, default="pending"),
    Column("applied", Boolean, nullable=False, default=False),
    Index("ix_plan_changes_run_kind", "run_id", "kind", "id"),
    Index("ix_plan_changes_run_person", "run_id", "person_id"),
)

overrides = Table(
    "overrides",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", Integer, ForeignKey("organisations.id"), nullable=False),
    Column("subject", String(400), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("person_id", Integer),
    Column("run_id", Integer),
    Column("created_by", String(320), nullable=False),
    Column("created_at", TS, nullable=False),
    # A field, "manager", or create/archive/restore/link (domain/overrides.py), and a key of Entra's value.
    Column("part", String(64), nullable=False),
    Column("value", String(80), nullable=False),
    Column("label", Text),  # Entra's value as the overrides list shows it
    UniqueConstraint("org_id", "subject", "part", "value", name="uq_overrides_part"),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", Integer, ForeignKey("organisations.id"), nullable=False),
    Column("recipient_id", Integer, ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
    Column("run_id", Integer),
    Column("created_at", TS, nullable=False),
    Column("title", String(256), nullable=False),
    Column("body", Text, nullable=False),
    Column("read_at", TS),
    Index("ix_notifications_recipient", "recipient_id", "read_at"),
)

revoked_sessions = Table(
    "revoked_sessions",
    metadata,
    Column("sid", String(64), primary_key=True),
    Column("expires_at", TS, nullable=False),
    Index("ix_revoked_sessions_expires", "expires_at"),
)

# Failed local sign-ins, shared by every web process (a per-process count would let N processes
# allow N times the limit). Keys are SHA-256 digests: what someone typed into the e-mail field (at
# times a password) is never stored.
sign_in_failures = Table(
    "sign_in_failures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(64), nullable=False),
    Column("at", TS, nullable=False),
    Index("ix_sign_in_failures_key_at", "key", "at"),
    Index("ix_sign_in_failures_at", "at"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", Integer, ForeignKey("organisations.id"), nullable=False),
    Column("person_id", Integer, ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(128), nullable=False, unique=True),
    Column("created_at", TS, nullable=False),
    Column("last_used_at", TS),
    # What the token may do (read, write, admin; each implies the ones before it), when it stops
    # working, and when its owner revoked it (kept, so the list shows it).
    Column("scopes", JSON, nullable=False),
    Column("expires_at", TS),
    Column("revoked_at", TS),
)

# The change feed (spec §11): append-only, one row per change to a person, written in the
# transaction of the change. ``seq`` is per organisation and assigned under the organisation's row
# lock (every transaction that changes people takes it first), so seq order is commit order and a
# committed seq never leaves a gap below it: a reader that keeps its cursor misses nothing.
# Kept cheap to write, since a 100,000-joiner first sync writes 100,000 of them (bench/RESULTS-feed.md):
# the key is (org_id, seq) alone (WITHOUT ROWID on SQLite: one B-tree), no foreign key (organisations
# are never deleted; plan_changes does the same), and ``data`` is JSON text the repository encodes and
# decodes (no per-row validation by PostgreSQL's json input function).
person_events = Table(
    "person_events",
    metadata,
    Column("org_id", Integer, primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("type", String(16), nullable=False),  # created | updated | moved | archived | restored
    Column("person_id", Integer, nullable=False),
    Column("at", TS, nullable=False),
    Column("actor", String(320), nullable=False),
    Column("run_id", Integer),
    Column("data", Text, nullable=False),
    sqlite_with_rowid=False,
)

# Webhook endpoints (spec §11). ``cursor_seq`` is how far into the organisation's feed deliveries
# have been queued for this endpoint: the feed itself is the outbox, so a refresh writes no delivery
# rows and is never slowed by endpoints.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", Integer, ForeignKey("organisations.id"), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("description", String(200)),
    Column("event_types", JSON, nullable=False),
    Column("secret_enc", LargeBinary, nullable=False),  # Fernet token of the whsec_ secret
    Column("status", String(16), nullable=False),  # active | disabled
    Column("disabled_reason", Text),
    Column("cursor_seq", Integer, nullable=False),
    Column("failing_since", TS),  # first failed attempt since the last success
    Column("last_success_at", TS),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(320), nullable=False),
    Column("disabled_at", TS),
    Index("ix_webhook_endpoints_org", "org_id", "id"),
)

# One event for one endpoint: pending until a 2xx, retried with back-off, given up after 3 days.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("endpoint_id", Integer, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("org_id", Integer, nullable=False),
    Column("event_seq", Integer, nullable=False),  # the event is (org_id, event_seq) in person_events
    Column("person_id", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", TS, nullable=False),
    Column("claimed_until", TS),  # a worker is sending it (at least once: a dead worker's claim expires)
    Column("first_attempt_at", TS),
    Column("last_attempt_at", TS),
    Column("delivered_at", TS),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("created_at", TS, nullable=False),
    UniqueConstraint("endpoint_id", "event_seq", name="uq_webhook_deliveries_endpoint_seq"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_person", "endpoint_id", "person_id", "event_seq"),
)

# The delivery log: every attempt, what the endpoint answered and how long it took.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("delivery_id", Integer, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False),
    Column("endpoint_id", Integer, nullable=False),
    Column("at", TS, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_webhook_attempts_endpoint", "endpoint_id", "id"),
    Index("ix_webhook_attempts_delivery", "delivery_id"),
)
