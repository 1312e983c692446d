"""Vector indexes named by their dimension, built in the background

Revision ID: 0013
Revises: 0012

Each space's HNSW index now names its dimension in its predicate and its name, and is
built by the trainer's sweep (``storage/repositories/vector_indexes.py``) once a space's
writes pause (``vector_spaces.written_at``). The indexes of the earlier form keep serving
(the new queries imply their predicate) until the sweep has built their successors.

The planner estimates ``vector_dims(embedding) = d`` at 0.5% of the rows without statistics
on that expression, and so might sort a space of millions instead of using its index: the
statistics object below lets ANALYZE measure it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "vector_spaces", sa.Column("written_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute("CREATE STATISTICS item_vectors_dims ON (vector_dims(embedding)) FROM item_vectors")


def downgrade() -> None:
    op.execute("DROP STATISTICS IF EXISTS item_vectors_dims")
    op.drop_column("vector_spaces", "written_at")
