"""Alembic environment of the policy database: migrations run on the connection twin gives."""

from alembic import context

connection = context.config.attributes["connection"]
# batch mode lets later migrations alter tables on SQLite too
context.configure(connection=connection, version_table="twin_policy_version", render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
