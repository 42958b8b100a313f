"""alembic environment for the hub: the connection comes from `controller.gym.database`
(`config.attributes["connection"]`), never from an ini file."""

from __future__ import annotations

from alembic import context

from controller.gym import athletes_schema  # noqa: F401  (its tables join the metadata)
from controller.gym.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
