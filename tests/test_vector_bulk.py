"""Vectors written in bulk: one statement for any number of them, values kept exactly
(float32 round trip through a real[] array), and updated in place."""

from __future__ import annotations

from typing import Any

import numpy as np

BULK = """mutation($i: ItemsBulkUpsertInput!) { itemsBulkUpsert(input: $i) {
  upsertedCount userErrors { field message } } }"""
SPACE = "input"


def items(n: int, dim: int = 8, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [{"id": f"v{k}", "title": f"item {k}", "embedding": rng.normal(size=dim).tolist()}
            for k in range(n)]


async def test_a_bulk_load_keeps_every_vector_exactly(gql, store):
    rows = items(1200)
    res = await gql(BULK, {"i": {"items": rows}})
    assert res["itemsBulkUpsert"]["upsertedCount"] == 1200
    pks = await store.items.pks("default", [r["id"] for r in rows])
    stored = await store.vectors.get("default", SPACE, list(pks.values()))
    for r in rows[::97]:
        sent = np.asarray(r["embedding"], np.float32)
        assert np.array_equal(stored[pks[r["id"]]], sent)  # bit for bit, as float32
    target = np.asarray(rows[777]["embedding"], np.float32)
    hits = await store.vectors.nearest("default", SPACE, target, 3)
    assert hits[0][0] == pks["v777"] and hits[0][1] < 1e-6
    # an update of some vectors replaces them
    changed = [{**r, "embedding": [-x for x in r["embedding"]]} for r in rows[:10]]
    await gql(BULK, {"i": {"items": changed}})
    again = await store.vectors.get("default", SPACE, [pks["v3"]])
    assert np.array_equal(again[pks["v3"]], -np.asarray(rows[3]["embedding"], np.float32))
