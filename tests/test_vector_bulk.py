"""Bulk loads of vectors: the space's HNSW index is dropped for the load and built once
after it, searches stay exact meanwhile, and an index a stopped process left unbuilt is
built at the next start."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import text

from storage.repositories.vectors import BULK_VECTORS, index_name

BULK = """mutation($i: ItemsBulkUpsertInput!) { itemsBulkUpsert(input: $i) {
  upsertedCount userErrors { field message } } }"""
SPACE = "input"


def items(n: int, dim: int = 8, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [{"id": f"v{k}", "title": f"item {k}", "embedding": rng.normal(size=dim).tolist()}
            for k in range(n)]


async def has_index(store: Any, space: str = SPACE) -> bool:
    async with store.engine.connect() as conn:
        found = await conn.execute(text("SELECT 1 FROM pg_indexes WHERE indexname = :n"),
                                   {"n": index_name("default", space)})
        return found.first() is not None


async def nearest_ids(store: Any, vector: list[float], k: int = 3) -> list[str]:
    hits = await store.vectors.nearest("default", SPACE, np.asarray(vector, np.float32), k)
    records = await store.items.by_pks("default", [pk for pk, _ in hits])
    return [records[pk].external_id for pk, _ in hits]


async def test_a_bulk_load_builds_the_index_once_after_it(gql, store):
    store.vectors.rebuild_after = 3600.0  # built when the test says (finish_rebuilds)
    try:
        rows = items(BULK_VECTORS + 200)
        for start in range(0, len(rows), 600):  # one small batch, then bulk ones
            batch = rows[start : start + 600] if start else rows[:300]
            res = await gql(BULK, {"i": {"items": batch}})
            assert res["itemsBulkUpsert"]["userErrors"] == []
        res = await gql(BULK, {"i": {"items": rows}})
        assert res["itemsBulkUpsert"]["upsertedCount"] == len(rows)
        assert not await has_index(store)  # dropped for the load
        target = rows[777]["embedding"]
        assert (await nearest_ids(store, target))[0] == "v777"  # an exact scan meanwhile
        await store.vectors.finish_rebuilds()
        assert await has_index(store)
        assert (await nearest_ids(store, target))[0] == "v777"
    finally:
        store.vectors.rebuild_after = 2.0


async def test_small_writes_keep_the_index_and_a_missing_one_is_rebuilt(gql, store):
    res = await gql(BULK, {"i": {"items": items(50)}})
    assert res["itemsBulkUpsert"]["userErrors"] == []
    assert await has_index(store)
    async with store.engine.begin() as conn:  # as a process stopped mid-load leaves it
        await conn.execute(text(f"DROP INDEX {index_name('default', SPACE)}"))
    await store.vectors.ensure_indexes()
    assert await has_index(store)
    assert (await nearest_ids(store, items(50)[10]["embedding"]))[0] == "v10"
