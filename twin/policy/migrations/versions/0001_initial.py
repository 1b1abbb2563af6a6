"""Load profiles, parameter sets, runs and policies.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "twin_profiles",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("load", sa.JSON, nullable=False),
        sa.Column("vector", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "twin_parameter_sets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.UniqueConstraint("model", "digest", name="uq_twin_parameter_sets_model_digest"),
    )
    op.create_table(
        "twin_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("profile_id", sa.Integer, sa.ForeignKey("twin_profiles.id"), nullable=False),
        sa.Column("parameter_set_id", sa.Integer, sa.ForeignKey("twin_parameter_sets.id"), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("seeds", sa.JSON, nullable=False),
        sa.Column("study", sa.String(200)),
        sa.Column("trial", sa.Integer),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "twin_policies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("experiment", sa.String(200), nullable=False),
        sa.Column("regime", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("profile_id", sa.Integer, sa.ForeignKey("twin_profiles.id"), nullable=False),
        sa.Column("parameter_set_id", sa.Integer, sa.ForeignKey("twin_parameter_sets.id"), nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("model", "experiment", "regime", "version", name="uq_twin_policies_version"),
    )
    op.create_index("ix_twin_policies_model", "twin_policies", ["model"])


def downgrade():
    op.drop_index("ix_twin_policies_model", "twin_policies")
    for table in ("twin_policies", "twin_runs", "twin_parameter_sets", "twin_profiles"):
        op.drop_table(table)
