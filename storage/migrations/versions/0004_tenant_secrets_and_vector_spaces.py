"""Per-tenant vector spaces and user-token secrets

Revision ID: 0004
Revises: 0003

- ``tenants.token_secret`` signs the user tokens that let a browser-held ``recommend`` key
  act for one user. It is random per tenant (two v4 UUIDs: 244 random bits).
- ``vector_spaces`` gets a ``tenant_id``: each tenant fixes its own dimension for a space
  (the first tenant's dimension no longer applies to everyone), under row-level security.
  The HNSW indexes become per tenant and space; they are rebuilt on first use.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RANDOM_SECRET = "replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')"


def upgrade() -> None:
    op.add_column(
        "tenants",
        sa.Column("token_secret", sa.Text(), server_default=sa.text(RANDOM_SECRET), nullable=False),
    )
    op.add_column("vector_spaces", sa.Column("tenant_id", sa.Text(), nullable=True))
    # every tenant that stored vectors in a space keeps that space's dimension
    op.execute(
        "INSERT INTO vector_spaces (name, dim, tenant_id) "
        "SELECT DISTINCT v.space, s.dim, v.tenant_id FROM item_vectors v "
        "JOIN vector_spaces s ON s.name = v.space AND s.tenant_id IS NULL"
    )
    op.execute("DELETE FROM vector_spaces WHERE tenant_id IS NULL")
    op.drop_constraint("vector_spaces_pkey", "vector_spaces", type_="primary")
    op.alter_column("vector_spaces", "tenant_id", nullable=False)
    op.create_primary_key("vector_spaces_pkey", "vector_spaces", ["tenant_id", "name"])
    op.create_foreign_key(
        "vector_spaces_tenant_id_fkey",
        "vector_spaces",
        "tenants",
        ["tenant_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.execute(
        "DO $$ DECLARE r record; BEGIN "
        "FOR r IN SELECT indexname FROM pg_indexes "
        "WHERE indexname LIKE 'ix_item_vectors_hnsw_%' LOOP "
        "EXECUTE format('DROP INDEX IF EXISTS %I', r.indexname); END LOOP; END $$"
    )
    op.execute("ALTER TABLE vector_spaces ENABLE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON vector_spaces "
        "USING (tenant_id = current_setting('recograph.tenant', true)) "
        "WITH CHECK (tenant_id = current_setting('recograph.tenant', true))"
    )
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON vector_spaces TO recograph_tenant")


def downgrade() -> None:
    op.execute("DROP POLICY IF EXISTS tenant_isolation ON vector_spaces")
    op.execute("ALTER TABLE vector_spaces DISABLE ROW LEVEL SECURITY")
    op.drop_constraint("vector_spaces_tenant_id_fkey", "vector_spaces", type_="foreignkey")
    op.drop_constraint("vector_spaces_pkey", "vector_spaces", type_="primary")
    op.execute(
        "DELETE FROM vector_spaces a USING vector_spaces b "
        "WHERE a.name = b.name AND a.tenant_id > b.tenant_id"
    )
    op.drop_column("vector_spaces", "tenant_id")
    op.create_primary_key("vector_spaces_pkey", "vector_spaces", ["name"])
    op.drop_column("tenants", "token_secret")
