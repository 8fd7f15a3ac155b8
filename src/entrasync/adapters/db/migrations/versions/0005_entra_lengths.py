"""Columns sized for what Entra can send: conflict subjects (an e-mail of up to 320 characters), and a
tenant given as a domain name (up to 253 characters).

PostgreSQL enforces ``varchar(n)``; SQLite does not, so only PostgreSQL needs the ALTERs.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_WIDER = (
    ("plan_changes", "subject", 80, 400),
    ("overrides", "subject", 80, 400),
    ("connections", "tenant_id", 64, 256),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, old, new in _WIDER:
        op.alter_column(table, column, type_=sa.String(length=new), existing_type=sa.String(length=old))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, old, new in _WIDER:
        op.alter_column(table, column, type_=sa.String(length=old), existing_type=sa.String(length=new))
