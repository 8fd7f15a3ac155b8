"""Revocable web sessions, one organisation per Entra tenant, and the delta link kept apart.

- ``revoked_sessions``: signing out records the session id, so a copy of the (encrypted, stateless)
  session cookie stops working at once instead of living until it expires.
- ``connections.tenant_id`` unique: two organisations can never be connected to the same tenant,
  even when two connects race.
- ``sync_state.delta_link``: an unchanged delta round updates only the link, not the mirror blob.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revoked_sessions",
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_revoked_sessions")),
    )
    op.create_index("ix_revoked_sessions_expires", "revoked_sessions", ["expires_at"])
    with op.batch_alter_table("connections") as batch:
        batch.create_unique_constraint("uq_connections_tenant_id", ["tenant_id"])
    with op.batch_alter_table("sync_state") as batch:
        batch.add_column(sa.Column("delta_link", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_state") as batch:
        batch.drop_column("delta_link")
    with op.batch_alter_table("connections") as batch:
        batch.drop_constraint("uq_connections_tenant_id", type_="unique")
    op.drop_index("ix_revoked_sessions_expires", table_name="revoked_sessions")
    op.drop_table("revoked_sessions")
