"""Alembic environment: always run from `slackbot.jobs.db.migrate`, which hands over an open connection."""

from __future__ import annotations

from alembic import context

from slackbot.jobs.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through slackbot.jobs.db.migrate(engine), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    compare_type=True,
    # SQLite cannot ALTER most things in place; batch mode rebuilds tables instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
