"""The organisation's Graph access token, kept sealed beside its connection (issue 13).

A refresh in a new process (cron's `entrasync refresh`, every job of a fresh worker) asked the identity
platform for a token each time, and loaded msal to do it: ~0.1 s of a 0.7 s unchanged refresh. The
token is now sealed with the deployment's key (with the digest of the credential it was issued for)
and reused until five minutes before it expires; a new connection row starts without one.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.add_column(sa.Column("token_enc", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.drop_column("token_expires_at")
        batch.drop_column("token_enc")
