"""An unchanged refresh in milliseconds (issue 13): the rest a clean run leaves.

- sync_state.rest: JSON (domain.rest.Rest) of the last clean run: digests of the plan's inputs other
  than Entra's users and the counts at rest. A refresh whose delta round is empty and whose inputs still
  match it says ``no_changes`` without loading the mirror or planning.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_state") as batch:
        batch.add_column(sa.Column("rest", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_state") as batch:
        batch.drop_column("rest")
