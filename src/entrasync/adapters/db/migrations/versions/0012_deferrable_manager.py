"""People's manager foreign key deferrable (issue 13, linear to 300,000 users on PostgreSQL).

A first sync COPYs every person with their manager in one statement, into a table with no statistics
yet. PostgreSQL checks a non-deferrable foreign key at the end of that statement, with a plan made for
a table it believes empty: at 300,000 people it picked the (org_id, display_name, id) index for
``id = $1`` and walked the whole index per check, quadratic (the COPY ran for over 8 minutes). Deferred,
the checks run at commit, after the apply has analysed the table (directory_writer.analyze_if_stale), by
primary key. ``DEFERRABLE INITIALLY IMMEDIATE``: every other statement checks at once as before; the
apply defers it for its own transaction. SQLite defers with ``PRAGMA defer_foreign_keys`` already.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_FK = "fk_people_manager_id_people"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE people ALTER CONSTRAINT {_FK} DEFERRABLE INITIALLY IMMEDIATE")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE people ALTER CONSTRAINT {_FK} NOT DEFERRABLE")
