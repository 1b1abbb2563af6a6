"""Alembic environment of the policy database: migrations run on the connection twin gives."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table="twin_policy_version")
with context.begin_transaction():
    context.run_migrations()
