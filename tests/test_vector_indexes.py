"""Deferred vector indexes: a bulk load lands without its HNSW index, searches stay exact
meanwhile, and the index is built (concurrently) once the space's writes pause; failed
builds and indexes of a former dimension are cleaned up."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
from sqlalchemy import text

from storage.repositories import vector_indexes
from storage.repositories.vector_indexes import LOCK_NAMESPACE, index_name, legacy_index_name
from storage.repositories.vectors import nearest_query

BULK = """mutation($i: ItemsBulkUpsertInput!) { itemsBulkUpsert(input: $i) {
  upsertedCount userErrors { field message } } }"""
SPACE = "input"


def items(n: int, dim: int, seed: int = 0, prefix: str = "v") -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [{"id": f"{prefix}{k}", "title": f"item {k}", "embedding": rng.normal(size=dim).tolist()}
            for k in range(n)]


async def load(gql, rows: list[dict[str, Any]]) -> None:
    res = await gql(BULK, {"i": {"items": rows}})
    assert res["itemsBulkUpsert"]["userErrors"] == []


async def plan(store, vector: np.ndarray) -> str:
    stmt = nearest_query("default", SPACE, vector, 3)
    compiled = stmt.compile(store.engine.sync_engine, compile_kwargs={"literal_binds": True})
    async with store.engine.connect() as conn:
        rows = (await conn.execute(text(f"EXPLAIN {compiled}"))).all()
    return "\n".join(r[0] for r in rows)


async def nearest_is(store, rows, k: int, dim: int) -> None:
    target = np.asarray(rows[k]["embedding"], np.float32)
    pks = await store.items.pks("default", [rows[k]["id"]])
    hits = await store.vectors.nearest("default", SPACE, target, 3)
    assert hits[0][0] == pks[rows[k]["id"]] and hits[0][1] < 1e-6


async def test_a_bulk_load_is_searched_exactly_and_indexed_once_its_writes_pause(gql, store):
    rows = items(1200, dim=8)
    await load(gql, rows)
    name = index_name("default", SPACE, 8)
    keeper = store.vectors.indexes
    assert await keeper.state(name) is None  # the load paid no index maintenance
    await nearest_is(store, rows, 777, 8)  # an exact scan meanwhile
    assert await keeper.sweep(quiet=600) == []  # written just now: not at rest yet
    assert await keeper.sweep(quiet=0) == [name]
    state = await keeper.state(name)
    assert state is not None and state.valid
    assert name in await plan(store, np.asarray(rows[5]["embedding"], np.float32))
    await nearest_is(store, rows, 777, 8)
    assert await keeper.sweep(quiet=0) == []  # nothing left to do
    # a sweep that saw it invalid (being built elsewhere) checks again before dropping
    assert not await keeper._drop(name, {name: None}, None)
    assert (await keeper.state(name)).valid


async def test_a_small_space_gets_no_index(gql, store):
    await load(gql, items(50, dim=8))
    assert await store.vectors.indexes.sweep(quiet=0) == []


async def test_a_training_rewriting_a_large_share_drops_the_index_and_other_writes_keep_it(
    gql, store
):
    rows = items(1200, dim=8)
    await load(gql, rows)
    keeper = store.vectors.indexes
    name = index_name("default", SPACE, 8)
    await keeper.sweep(quiet=0)
    await load(gql, items(20, dim=8, seed=1))  # a few changed vectors go into the index
    await load(gql, items(1200, dim=8, seed=3))  # so does a client's load: never a wait
    assert (await keeper.state(name)).valid
    rewritten = np.random.default_rng(2).normal(size=(1200, 8)).astype(np.float32)
    pks = await store.items.pks("default", [r["id"] for r in rows])
    ordered = [pks[r["id"]] for r in rows]
    await store.vectors.upsert("default", SPACE, ordered, rewritten, rewrite=True)  # a training
    assert await keeper.state(name) is None  # cheaper to build again than to insert into
    hits = await store.vectors.nearest("default", SPACE, rewritten[42], 1)
    assert hits[0][0] == ordered[42]
    assert await keeper.sweep(quiet=0) == [name]
    assert (await store.vectors.nearest("default", SPACE, rewritten[42], 1))[0][0] == ordered[42]


async def test_a_trickle_of_writes_is_indexed_after_a_while_but_a_long_load_is_not(gql, store):
    await load(gql, items(1200, dim=8))
    keeper = store.vectors.indexes
    name = index_name("default", SPACE, 8)
    long_ago = time.monotonic() - vector_indexes.FORCE_AFTER_SECONDS
    assert await keeper.sweep(quiet=600) == []  # never at rest from here on
    keeper._waiting[name] = (long_ago, 1200)  # as if two minutes had passed ...
    await load(gql, items(1200, dim=8, seed=1, prefix="more"))  # ... loading all along
    assert await keeper.sweep(quiet=600) == []  # a load: its index waits for the pause
    keeper._waiting[name] = (long_ago, 2400)
    await load(gql, items(30, dim=8, seed=2, prefix="few"))  # a trickle
    assert await keeper.sweep(quiet=600) == [name]


async def test_a_failing_build_holds_up_no_other_space_and_is_retried_later(
    gql, store, monkeypatch
):
    await load(gql, items(1200, dim=8))
    pks = list((await store.items.pks("default", [f"v{k}" for k in range(1200)])).values())
    other = np.random.default_rng(9).normal(size=(1200, 4)).astype(np.float32)
    await store.vectors.upsert("default", "other", pks, other)
    keeper = store.vectors.indexes
    failing, fine = index_name("default", SPACE, 8), index_name("default", "other", 4)
    real = vector_indexes.create_index

    def broken(tenant: str, space: str, dim: int) -> str:
        return "SELECT 1 / 0" if space == SPACE else real(tenant, space, dim)

    monkeypatch.setattr(vector_indexes, "create_index", broken)
    assert await keeper.sweep(quiet=0) == [fine]  # "input" sorts first and fails
    assert await keeper.sweep(quiet=0) == []  # backing off, not failing every sweep
    monkeypatch.setattr(vector_indexes, "create_index", real)
    keeper._retry_at[failing] = 0.0
    assert await keeper.sweep(quiet=0) == [failing]


async def create_legacy_index(store) -> str:
    """The 8-dimensional index of the earlier form, as migrations before 0013 left it: its
    predicate does not name the dimension."""
    legacy = legacy_index_name("default", SPACE)
    async with store.engine.begin() as conn:
        await conn.execute(text(
            f"CREATE INDEX {legacy} ON item_vectors USING hnsw "
            "((embedding::vector(8)) vector_cosine_ops) "
            "WHERE tenant_id = 'default' AND space = 'input'"
        ))  # fmt: skip
        await conn.execute(text("ANALYZE item_vectors"))
    return legacy


async def test_an_index_of_the_earlier_form_serves_until_its_successor_is_built(gql, store):
    rows = items(1200, dim=8)
    await load(gql, rows)
    legacy = await create_legacy_index(store)
    assert legacy in await plan(store, np.asarray(rows[1]["embedding"], np.float32))
    keeper = store.vectors.indexes
    new = index_name("default", SPACE, 8)
    assert await keeper.sweep(quiet=0) == [new]
    assert (await keeper.state(legacy)).valid  # dropped only once the successor served
    await keeper.sweep(quiet=0)
    assert await keeper.state(legacy) is None
    assert new in await plan(store, np.asarray(rows[1]["embedding"], np.float32))


async def test_a_new_dimension_is_written_although_an_index_of_the_earlier_form_exists(
    gql, store
):
    await load(gql, items(1200, dim=8))
    legacy = await create_legacy_index(store)
    assert store.catalog is not None
    await store.catalog.delete_items("default", [f"v{k}" for k in range(1200)])
    store.vectors._dims.clear()
    rows = items(50, dim=4, prefix="w")
    await load(gql, rows)  # the old index would have cast these to 8 dimensions
    assert await store.vectors.indexes.state(legacy) is None
    await nearest_is(store, rows, 7, 4)


async def test_a_cancelled_build_leaves_no_lock_and_is_finished_later(gql, store):
    await load(gql, items(1200, dim=8))
    keeper = store.vectors.indexes
    for delay in (0.0, 0.05, 0.2):  # wherever the cancellation lands
        sweeping = asyncio.create_task(keeper.sweep(quiet=0))
        await asyncio.sleep(delay)
        sweeping.cancel()
        await asyncio.gather(sweeping, return_exceptions=True)
        for _ in range(100):  # the server notices the closed connection within a second
            async with store.engine.connect() as conn:
                held = await conn.execute(text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = :ns"
                ), {"ns": LOCK_NAMESPACE})  # fmt: skip
                if held.scalar() == 0:
                    break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("a cancelled sweep left its lock held")
        async with store.engine.begin() as conn:
            await conn.execute(text(f"DROP INDEX IF EXISTS {index_name('default', SPACE, 8)}"))
    await keeper.sweep(quiet=0)
    assert (await keeper.state(index_name("default", SPACE, 8))).valid


async def test_a_failed_build_is_dropped_and_built_again(gql, store):
    await load(gql, items(1200, dim=8))
    keeper = store.vectors.indexes
    name = index_name("default", SPACE, 8)
    await keeper.sweep(quiet=0)
    async with store.engine.begin() as conn:  # what a cancelled CREATE INDEX CONCURRENTLY leaves
        await conn.execute(
            text(f"UPDATE pg_index SET indisvalid = false WHERE indexrelid = '{name}'::regclass")
        )
    assert not (await keeper.state(name)).valid
    assert await keeper.sweep(quiet=0) == [name]
    assert (await keeper.state(name)).valid


async def test_a_space_changing_dimension_accepts_writes_while_the_old_index_exists(gql, store):
    await load(gql, items(1200, dim=8))
    keeper = store.vectors.indexes
    old = index_name("default", SPACE, 8)
    await keeper.sweep(quiet=0)
    assert store.catalog is not None
    await store.catalog.delete_items("default", [f"v{k}" for k in range(1200)])
    store.vectors._dims.clear()  # as in a process that never saw the old dimension
    assert (await keeper.state(old)).valid  # still there until the next sweep
    rows = items(1200, dim=4, prefix="w")
    await load(gql, rows)  # every row is refused by the old index's predicate, not cast
    await load(gql, items(3, dim=4, seed=5, prefix="x"))
    await nearest_is(store, rows, 10, 4)
    new = index_name("default", SPACE, 4)
    assert await keeper.sweep(quiet=0) == [new]
    assert await keeper.state(old) is None
    await nearest_is(store, rows, 10, 4)


async def test_sweeps_racing_build_the_index_once(gql, store):
    await load(gql, items(1200, dim=8))
    keeper = store.vectors.indexes
    results = await asyncio.gather(keeper.sweep(quiet=0), keeper.sweep(quiet=0))
    name = index_name("default", SPACE, 8)
    assert sorted(results) == [[], [name]]
    assert (await keeper.state(name)).valid


async def test_a_training_in_progress_does_not_stall_an_index_build(gql, store):
    """The trainer holds its tenant's lock for a whole training: on a connection in an
    open transaction, CREATE INDEX CONCURRENTLY would wait for it to the end."""
    from storage.engine_storage import StoreEngineStorage

    await load(gql, items(1200, dim=8))
    storage = StoreEngineStorage(store)
    lock = await storage.try_lock("train:default")
    assert lock is not None
    try:
        name = index_name("default", SPACE, 8)
        assert await asyncio.wait_for(store.vectors.indexes.sweep(quiet=0), 60) == [name]
    finally:
        await storage.unlock(lock)
