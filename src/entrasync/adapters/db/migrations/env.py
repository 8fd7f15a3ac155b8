"""Alembic environment: runs on the connection the app hands over, or on the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from entrasync.adapters.db.tables import metadata

config = context.config
target_metadata = metadata


def _ours(name: str | None, type_: str, _parent: object) -> bool:
    """Autogenerate compares the product's tables only: Procrastinate's come from its own schema.sql."""
    return not (type_ == "table" and name is not None and name.startswith("procrastinate_"))


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True, include_name=_ours
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True, include_name=_ours)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
