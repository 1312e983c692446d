"""Scenarios, experiments and the attribution of events to served lists

Revision ID: 0011
Revises: 0010

``scenarios``: named placement presets, one row per version (the newest is current; a null
definition marks a deletion). ``experiments``: A/B tests of scenarios for one placement.
``experiment_exposures``: lists served per variant. ``interactions.recommendation_id``:
the served list an event answers, indexed for prefix scans (an experiment's lists share
their id's prefix).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("scenarios", "experiments", "experiment_exposures")


def _now() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "scenarios",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", postgresql.JSONB(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        _now(),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "name", "version"),
    )
    op.create_table(
        "experiments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("scenario", sa.Text(), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="draft", nullable=False),
        sa.Column("variants", postgresql.JSONB(), nullable=False),
        sa.Column("click_types", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("conversion_types", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("winner", sa.Text(), nullable=True),
        _now(),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_experiments_tenant", "experiments", ["tenant_id", "id"])
    op.create_table(
        "experiment_exposures",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("experiment_id", sa.BigInteger(), nullable=False),
        sa.Column("variant", sa.Integer(), nullable=False),
        sa.Column("exposures", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "experiment_id", "variant"),
    )
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            "USING (tenant_id = current_setting('recograph.tenant', true)) "
            "WITH CHECK (tenant_id = current_setting('recograph.tenant', true))"
        )
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO recograph_tenant")
    op.execute("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO recograph_tenant")
    op.add_column("interactions", sa.Column("recommendation_id", sa.Text(), nullable=True))
    op.create_index(
        "ix_interactions_recommendation",
        "interactions",
        ["tenant_id", "recommendation_id"],
        postgresql_where=sa.text("recommendation_id IS NOT NULL"),
        postgresql_ops={"recommendation_id": "text_pattern_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_interactions_recommendation", table_name="interactions")
    op.drop_column("interactions", "recommendation_id")
    for table in reversed(TABLES):
        op.drop_table(table)
