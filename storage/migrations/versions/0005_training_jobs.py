"""Training jobs: the API asks, the trainer process trains

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "training_jobs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("algorithms", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column(
            "configs",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("error_code", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_training_jobs_pending", "training_jobs", ["status", "id"])
    op.execute("ALTER TABLE training_jobs ENABLE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON training_jobs "
        "USING (tenant_id = current_setting('recograph.tenant', true)) "
        "WITH CHECK (tenant_id = current_setting('recograph.tenant', true))"
    )
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON training_jobs TO recograph_tenant")
    op.execute("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO recograph_tenant")


def downgrade() -> None:
    op.drop_index("ix_training_jobs_pending", table_name="training_jobs")
    op.drop_table("training_jobs")
