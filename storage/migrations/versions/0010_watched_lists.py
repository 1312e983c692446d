"""The last recommendations sent for each watched user

Revision ID: 0010
Revises: 0009

``watched_lists``: per tenant and user (a user some webhook watches), the item ids of the
list last seen. Change detection replaces it only when the new list differs, and writes
the ``recommendations.changed`` delivery in the same transaction, so two processes that
notice the same change send it once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "watched_lists",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("item_ids", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "user_id"),
    )
    op.execute("ALTER TABLE watched_lists ENABLE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON watched_lists "
        "USING (tenant_id = current_setting('recograph.tenant', true)) "
        "WITH CHECK (tenant_id = current_setting('recograph.tenant', true))"
    )
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON watched_lists TO recograph_tenant")


def downgrade() -> None:
    op.drop_table("watched_lists")
