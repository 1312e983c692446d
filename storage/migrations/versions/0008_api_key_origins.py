"""Web origins per API key, for CORS

Revision ID: 0008
Revises: 0007

``api_keys.allowed_origins``: the origins (``https://shop.example``) whose pages may call
the API with the key. Empty, the default, allows none: a key is for servers until its
owner names the pages that may hold it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE api_keys ADD COLUMN allowed_origins text[] NOT NULL DEFAULT '{}'")


def downgrade() -> None:
    op.execute("ALTER TABLE api_keys DROP COLUMN IF EXISTS allowed_origins")
