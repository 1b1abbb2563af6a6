"""A policy keeps the constraints of the sweep that made it, so the engine can check an answer.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("twin_policies") as batch:
        batch.add_column(sa.Column("constraints", sa.JSON, nullable=True))


def downgrade():
    with op.batch_alter_table("twin_policies") as batch:
        batch.drop_column("constraints")
