"""The mirror in a table of its own (issue 13, an unchanged refresh in milliseconds).

- sync_mirrors(org_id, cursor): the compressed Entra mirror, moved out of sync_state. SQLite keeps a
  row's columns in order in one record: with the ~9 MB mirror in it, every unchanged refresh's update of
  the delta link rewrote the whole record and every read of the link or the rest walked the mirror's
  overflow pages (~30 ms each at 100,000 users). Apart, those touch a row of a few hundred bytes.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_mirrors",
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("organisations.id"), primary_key=True),
        sa.Column("cursor", sa.LargeBinary(), nullable=False),
    )
    op.execute(
        "INSERT INTO sync_mirrors (org_id, cursor) SELECT org_id, cursor FROM sync_state WHERE cursor IS NOT NULL"
    )
    op.execute("DELETE FROM sync_state WHERE org_id NOT IN (SELECT org_id FROM sync_mirrors)")
    with op.batch_alter_table("sync_state") as batch:
        batch.drop_column("cursor")


def downgrade() -> None:
    with op.batch_alter_table("sync_state") as batch:
        batch.add_column(sa.Column("cursor", sa.LargeBinary(), nullable=True))
    op.execute(
        "UPDATE sync_state SET cursor = (SELECT m.cursor FROM sync_mirrors m WHERE m.org_id = sync_state.org_id)"
    )
    op.drop_table("sync_mirrors")
