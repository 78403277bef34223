"""Alembic environment: always given a live connection by ``integrations.appdb.migrate``."""

from __future__ import annotations

from alembic import context

from integrations.appdb.db import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through integrations.appdb.migrate.upgrade()")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
