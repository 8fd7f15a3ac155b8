"""Indexes for the People list and the User Sync tabs at 100,000 people (PRODUCT.md §9).

- ``people (org_id, display_name, id)``: the People list with status "all" and the Matched tab
  page in name order without sorting the whole organisation.
- ``plan_changes (run_id, person_id)``: the Matched tab's "no change proposed for this person" test.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_people_org_name", "people", ["org_id", "display_name", "id"])
    op.create_index("ix_plan_changes_run_person", "plan_changes", ["run_id", "person_id"])


def downgrade() -> None:
    op.drop_index("ix_plan_changes_run_person", table_name="plan_changes")
    op.drop_index("ix_people_org_name", table_name="people")
