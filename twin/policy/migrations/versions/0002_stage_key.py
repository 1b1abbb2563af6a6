"""A policy remembers the run stage that stored it, so a rerun of that stage reuses it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("twin_policies") as batch:
        batch.add_column(sa.Column("stage_key", sa.String(64), nullable=True))
    op.create_index("ix_twin_policies_stage_key", "twin_policies", ["stage_key"])


def downgrade():
    op.drop_index("ix_twin_policies_stage_key", "twin_policies")
    with op.batch_alter_table("twin_policies") as batch:
        batch.drop_column("stage_key")
