"""Alembic environment: runs on the connection heron hands over, never from a URL."""

from alembic import context

from heron.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
