"""Delta rounds' changes beside the mirror (issue 13, 1% churn under a second).

- sync_mirror_patches(org_id, seq, users, patch): the users a delta round touched, applied on the
  mirror of sync_mirrors in ``seq`` order when it loads (adapters.db.mirror_patches). A churn round of
  1,000 users among 100,000 wrote the whole ~9 MB mirror again (~0.5 s of encoding and compression);
  it now writes a few kilobytes. Writing the whole mirror (a full read, or past the limits) deletes them.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_mirror_patches",
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("organisations.id"), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.Column("patch", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sync_mirror_patches")
