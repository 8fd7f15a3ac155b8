"""Trust and scripting (issue 12): overrides field by field, staleness per person, runs that say what
became of their plan.

- overrides: ``part`` (a field, ``manager``, or create/archive/restore/link) and ``value`` (a key of
  Entra's value), with ``label`` (that value as shown); rows from before are kept as whole-change
  overrides (``part`` = ``legacy:<kind>``, ``value`` = the change fingerprint).
- people.version: the directory version of the person's last change, so a waiting plan is refused
  only when a person it changes changed after it was computed (runs.base_version).
- runs: applied counts (rejected and overridden apart), who applied the plan and when.
- people.sessions_since: sessions signed in before it are over (a password reset ends them).
- organisations.last_tenant_id: the tenant last connected, so connecting again can tell a rotated
  credential (same tenant: settings, delta state, overrides and schedule kept) from another tenant.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("overrides") as batch:
        batch.add_column(sa.Column("part", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("value", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("label", sa.Text(), nullable=True))
    op.execute("UPDATE overrides SET part = 'legacy:' || kind, value = fingerprint")
    with op.batch_alter_table("overrides") as batch:
        batch.alter_column("part", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("value", existing_type=sa.String(length=80), nullable=False)
        batch.drop_constraint("uq_overrides_key", type_="unique")
        batch.create_unique_constraint("uq_overrides_part", ["org_id", "subject", "part", "value"])
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("sessions_since", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("organisations") as batch:
        batch.add_column(sa.Column("last_tenant_id", sa.String(length=256), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("applied_counts", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("applied_by", sa.String(length=320), nullable=True))
        batch.add_column(sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("applied_at")
        batch.drop_column("applied_by")
        batch.drop_column("applied_counts")
    with op.batch_alter_table("organisations") as batch:
        batch.drop_column("last_tenant_id")
    with op.batch_alter_table("people") as batch:
        batch.drop_column("sessions_since")
        batch.drop_column("version")
    with op.batch_alter_table("overrides") as batch:
        batch.drop_constraint("uq_overrides_part", type_="unique")
        batch.create_unique_constraint("uq_overrides_key", ["org_id", "subject", "kind", "fingerprint"])
        batch.drop_column("label")
        batch.drop_column("value")
        batch.drop_column("part")
