"""More of Entra, a mapping the admin controls, people added by hand (issue 16, spec §12 and §3).

- people: start_date (DATE), employee_type, company_name, city, country, mobile_phone,
  business_phones (JSON list), preferred_language, and the custom field slots custom_1..custom_20.
- sync_settings: manual_people (archive | keep), link_by (email | employee_id), mapping (JSON of the
  differences from the default mapping).
- sync_state.mapping_digest: the mapping the mirror was read with (another mapping: a full read).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_TEXT = (
    ("employee_type", 64),
    ("company_name", 64),
    ("city", 128),
    ("country", 128),
    ("mobile_phone", 64),
)
_CUSTOM = tuple(f"custom_{n}" for n in range(1, 21))


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("start_date", sa.Date(), nullable=True))
        for name, length in _TEXT:
            batch.add_column(sa.Column(name, sa.String(length), nullable=True))
        batch.add_column(sa.Column("business_phones", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("preferred_language", sa.String(16), nullable=True))
        for name in _CUSTOM:
            batch.add_column(sa.Column(name, sa.String(1024), nullable=True))
    with op.batch_alter_table("sync_settings") as batch:
        batch.add_column(sa.Column("manual_people", sa.String(16), nullable=False, server_default="archive"))
        batch.add_column(sa.Column("link_by", sa.String(16), nullable=False, server_default="email"))
        batch.add_column(sa.Column("mapping", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("sync_state") as batch:
        batch.add_column(sa.Column("mapping_digest", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_state") as batch:
        batch.drop_column("mapping_digest")
    with op.batch_alter_table("sync_settings") as batch:
        for name in ("mapping", "link_by", "manual_people"):
            batch.drop_column(name)
    with op.batch_alter_table("people") as batch:
        for name in ("start_date", *(n for n, _ in _TEXT), "business_phones", "preferred_language", *_CUSTOM):
            batch.drop_column(name)
