"""A secret per experiment, signing the recommendation ids of the lists it serves

Revision ID: 0012
Revises: 0011

An event may name a list (``recommendationId``) only for the user it was served to, so a
client cannot invent lists or clicks to move an experiment's numbers. Existing experiments
get a secret too; ids they served before it existed no longer attribute events.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RANDOM_SECRET = "replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')"


def upgrade() -> None:
    op.add_column(
        "experiments",
        sa.Column("secret", sa.Text(), nullable=False, server_default=sa.text(RANDOM_SECRET)),
    )


def downgrade() -> None:
    op.drop_column("experiments", "secret")
