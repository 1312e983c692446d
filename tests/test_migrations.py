"""Migrations create exactly what the table definitions describe, with pgvector enabled."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from storage.tables import metadata


async def test_migrated_database_matches_models(store):
    def diff(sync_conn):
        ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return compare_metadata(ctx, metadata)

    async with store.engine.connect() as conn:
        changes = await conn.run_sync(diff)
        version = (await conn.execute(text(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"))).scalar_one()
    assert changes == []
    assert version.startswith("0.8")


async def test_default_tenant_and_interaction_types_exist(store):
    types = await store.interaction_types.all("default")
    assert {n: t.weight for n, t in types.items()} == {
        "view": 1.0, "click": 2.0, "add_to_cart": 5.0, "purchase": 10.0, "like": 3.0,
        "dislike": -3.0, "rating": 1.0}
    assert types["rating"].weight_of(5.0) == 2.5 and types["rating"].weight_of(1.0) == -1.5


async def test_artifact_versions_increase(store):
    v1 = await store.artifacts.save("default", "als", b"one", {"factors": 8})
    v2 = await store.artifacts.save("default", "als", b"two")
    latest = await store.artifacts.latest("default", "als")
    assert (v1, v2) == (1, 2)
    assert latest is not None and latest.version == 2 and latest.blob == b"two"
