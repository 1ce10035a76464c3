"""Alembic environment: the engine comes from naer.store.migrate (no alembic.ini to keep in step)."""

from __future__ import annotations

from alembic import context

from naer.store.tables import metadata

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
