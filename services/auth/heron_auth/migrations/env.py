"""Alembic environment: runs on the connection handed over by `heron_auth.migrate`."""

from __future__ import annotations

from alembic import context

from heron_auth.migrate import VERSION_TABLE
from heron_auth.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `heron migrate` or the service's start-up")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    version_table=VERSION_TABLE,
)
with context.begin_transaction():
    context.run_migrations()
