"""Refreshes on a job queue (spec §10): run leases on the runs themselves, one active run per
organisation, the shared Graph budget, local accounts found by e-mail across organisations, and
(PostgreSQL only) Procrastinate's schema.

- ``refresh_leases`` goes: a run carries its own lease (``claimed_by``, ``lease_expires_at``), and a
  partial unique index lets each organisation have one run ``running`` (queued or working) at a time;
  a scheduled run whose process died is retried by a new run naming it (``retry_of``, unique).
  Runs left ``running`` by the processes of the old version are failed here: none of them can finish
  under the new schema.
- ``graph_budget``: resource units spent per tenant and for the app (domain/graph_budget.py).
- Procrastinate's tables, functions and triggers, from the ``schema.sql`` the installed Procrastinate
  ships (https://procrastinate.readthedocs.io/en/stable/howto/production/migrations.html: a fresh
  install applies ``schema.sql``; later Procrastinate versions add SQL files under
  ``procrastinate/sql/migrations``, which a later entrasync migration applies in its turn). SQLite has
  no job queue: there, ``entrasync serve`` runs the same jobs itself (runners/inprocess.py).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UPGRADE_FAILED = "The refresh was stopped by an upgrade of entrasync; nothing was changed by it."


def _procrastinate_schema() -> str:
    from procrastinate.schema import SchemaManager

    return str(SchemaManager.get_schema())


def upgrade() -> None:
    bind = op.get_bind()
    runs = sa.table(
        "runs",
        sa.column("outcome", sa.String),
        sa.column("finished_at", sa.DateTime(timezone=True)),
        sa.column("error", sa.Text),
        sa.column("plan_state", sa.String),
    )
    now = datetime.now(UTC)
    op.execute(
        runs.update()
        .where(runs.c.outcome == "running")
        .values(
            outcome="failed",
            finished_at=now.replace(tzinfo=None) if bind.dialect.name == "sqlite" else now,
            error=UPGRADE_FAILED,
            plan_state="none",
        )
    )
    op.drop_table("refresh_leases")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("job_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("retry_of", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint("uq_runs_retry_of", ["retry_of"])
    op.create_index(
        "uq_runs_active_org",
        "runs",
        ["org_id"],
        unique=True,
        sqlite_where=sa.text("outcome = 'running'"),
        postgresql_where=sa.text("outcome = 'running'"),
    )
    op.create_index(
        "ix_people_local_accounts",
        "people",
        ["email_lower"],
        sqlite_where=sa.text("password_hash IS NOT NULL"),
        postgresql_where=sa.text("password_hash IS NOT NULL"),
    )
    op.create_table(
        "graph_budget",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_graph_budget")),
    )
    if bind.dialect.name == "postgresql":
        # On psycopg's own connection (same transaction): a statement sent without parameters goes as it
        # is, so the schema's own % signs need no escaping (SQLAlchemy would pass an empty parameter set).
        driver = bind.connection.driver_connection
        assert driver is not None
        driver.execute(_procrastinate_schema())


_DROP_PROCRASTINATE = """
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema()
             AND tablename LIKE 'procrastinate\\_%' LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', r.tablename);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS sig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%' LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', r.sig);
    END LOOP;
    FOR r IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate\\_%' AND t.typtype IN ('e', 'c') LOOP
        EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', r.typname);
    END LOOP;
END $$;
"""


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        driver = bind.connection.driver_connection
        assert driver is not None
        driver.execute(_DROP_PROCRASTINATE)
    op.drop_table("graph_budget")
    op.drop_index("ix_people_local_accounts", table_name="people")
    op.drop_index("uq_runs_active_org", table_name="runs")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_constraint("uq_runs_retry_of", type_="unique")
        batch_op.drop_column("retry_of")
        batch_op.drop_column("attempt")
        batch_op.drop_column("job_id")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("claimed_by")
    op.create_table(
        "refresh_leases",
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"], name=op.f("fk_refresh_leases_org_id_organisations")),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_refresh_leases")),
    )
