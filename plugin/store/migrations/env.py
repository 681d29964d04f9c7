"""Alembic's environment for Backstride: always run from plugin.store.migrate with a connection given."""

from __future__ import annotations

from alembic import context

from plugin.store.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things in place: batch mode copies the table, as Alembic recommends.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
