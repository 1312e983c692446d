"""Row-level security: a second wall between tenants

Revision ID: 0003
Revises: 0002

Requests run their transactions as the NOLOGIN role ``recograph_tenant`` with the setting
``recograph.tenant`` naming their tenant (see ``storage.tenancy``); policies then hide and
refuse every other tenant's rows even if a query forgot its ``tenant_id`` condition.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = (
    "items",
    "users",
    "interactions",
    "interaction_types",
    "item_vectors",
    "model_artifacts",
    "api_keys",
)


def upgrade() -> None:
    op.execute("""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'recograph_tenant') THEN
                CREATE ROLE recograph_tenant NOLOGIN;
            END IF;
        END $$""")
    op.execute("GRANT recograph_tenant TO CURRENT_USER")
    op.execute("GRANT USAGE ON SCHEMA public TO recograph_tenant")
    op.execute(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO recograph_tenant"
    )
    op.execute("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO recograph_tenant")
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            "USING (tenant_id = current_setting('recograph.tenant', true)) "
            "WITH CHECK (tenant_id = current_setting('recograph.tenant', true))"
        )


def downgrade() -> None:
    for table in TENANT_TABLES:
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
