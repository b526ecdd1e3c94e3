"""Alembic environment: run on the connection jwtauth hands over (see database.py)."""

from alembic import context

from jwtauth.server.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `jwtauth db upgrade`")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
