"""The storage side of ``engines.interfaces.EngineStorage``: what the engines read and write."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from engines.algorithm import Query, RecordedEvent
from engines.data import ItemContent
from engines.serving.rules import ItemRules
from engines.serving.search import Retrieved
from storage.filters import item_conditions
from storage.records import ArtifactRecord
from storage.repositories.training_jobs import JobRecord
from storage.store import Store
from storage.tables import INTERACTIONS as EVENTS
from storage.tables import ITEMS
from storage.tenancy import tenant_scope

UNRESTRICTED = ItemRules()
#: a user's pk and newest events; it names the tenant, so it may run outside row-level
#: security (``storage/hot_reads.py``): interactions are reached through the user's pk
HOT_HISTORY = (
    "SELECT u.id, h.items, h.weights, h.times FROM users u "
    "LEFT JOIN LATERAL (SELECT array_agg(e.item_id) AS items, array_agg(e.weight) AS weights, "
    "array_agg(e.ts) AS times FROM (SELECT item_id, weight, "
    "extract(epoch FROM occurred_at)::float8 AS ts FROM interactions "
    "WHERE user_id = u.id ORDER BY occurred_at DESC, id DESC LIMIT $3) e) h ON true "
    "WHERE u.tenant_id = $1 AND u.external_id = $2"
)
HISTORY = text(HOT_HISTORY.replace("$1", ":t").replace("$2", ":u").replace("$3", ":n"))


EVENTS_AFTER = text(
    "SELECT u.external_id AS user, i.external_id AS item, e.user_id, e.item_id, e.type, "
    "e.weight, e.value, extract(epoch FROM e.occurred_at)::float8 AS ts "
    "FROM interactions e JOIN users u ON u.id = e.user_id JOIN items i ON i.id = e.item_id "
    "WHERE e.tenant_id = :t AND e.id > :after ORDER BY e.id LIMIT :n"
)


#: the fallback popularity reads this many items of the online trending counters
ONLINE_POPULAR = 1_000


def _newest(query: Query, limit: int) -> Query:
    return Query(
        query.user_id,
        query.items[:limit],
        query.weights[:limit],
        query.times[:limit],
        query.now,
    )


#: one row of ``training_events``' binary COPY: a field count, then each field's length
#: and its big-endian value (user, item: int8; weight: float4; time: float8; none NULL)
_EVENT_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("ul", ">i4"), ("user", ">i8"),
        ("il", ">i4"), ("item", ">i8"),
        ("wl", ">i4"), ("weight", ">f4"),
        ("tl", ">i4"), ("time", ">f8"),
    ]
)  # fmt: skip
#: PGCOPY signature, flags and header extension length; a trailer of -1 ends the rows
_COPY_HEADER = 19


def _binary_events(payload: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    body = memoryview(payload)[_COPY_HEADER : len(payload) - 2] if payload else b""
    rows = np.frombuffer(body, _EVENT_ROW)
    if len(rows) and not (
        (rows["fields"] == 4).all() and (rows["wl"] == 4).all() and (rows["tl"] == 8).all()
    ):
        raise RuntimeError("unexpected layout of the events' binary COPY")
    return (
        rows["user"].astype(np.int64),
        rows["item"].astype(np.int64),
        rows["weight"].astype(np.float32),
        rows["time"].astype(np.float64),
    )


class StoreEngineStorage:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    async def training_events(
        self, tenant: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(user pks, item pks, weights, Unix times) of the tenant's events, read by one
        binary COPY straight into numpy arrays (row objects for 810k events took 3 s)."""
        sql = (
            "SELECT user_id, item_id, weight::float4, extract(epoch FROM occurred_at)::float8"
            f" FROM {EVENTS.name} WHERE tenant_id = $1"
        )
        chunks: list[bytes] = []

        async def sink(chunk: bytes) -> None:
            chunks.append(bytes(chunk))

        # in a transaction begun through SQLAlchemy: it takes the tenant's role and setting
        # (row-level security), as every other read of tenant data does
        async with self.engine.begin() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            await driver.copy_from_query(sql, tenant, output=sink, format="binary")
        return _binary_events(b"".join(chunks))

    async def change_marker(self, tenant: str) -> tuple[int, ...]:
        events = select(func.count(), func.coalesce(func.max(EVENTS.c.id), 0)).where(
            EVENTS.c.tenant_id == tenant
        )
        items = select(
            func.count(),
            func.coalesce(func.max(func.extract("epoch", ITEMS.c.updated_at)), 0),
        ).where(ITEMS.c.tenant_id == tenant)
        async with self.engine.connect() as conn:
            e = (await conn.execute(events)).one()
            i = (await conn.execute(items)).one()
        return int(e[0]), int(e[1]), int(i[0]), int(float(i[1]) * 1000)

    async def item_content(self, tenant: str) -> list[ItemContent]:
        stmt = (
            select(
                ITEMS.c.id,
                ITEMS.c.entity_type,
                ITEMS.c.title,
                ITEMS.c.text,
                ITEMS.c.categories,
                ITEMS.c.tags,
                ITEMS.c.attributes,
            )
            .where(ITEMS.c.tenant_id == tenant)
            .order_by(ITEMS.c.id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            ItemContent(
                r.id,
                r.entity_type,
                r.title,
                r.text,
                tuple(r.categories),
                tuple(r.tags),
                r.attributes,
            )
            for r in rows
        ]

    async def impressions(self, tenant: str, user_id: str) -> dict[int, int]:
        return await self.store.impressions.counts(tenant, user_id)

    async def record_impressions(self, tenant: str, user_id: str, pks: list[int]) -> None:
        await self.store.impressions.record(tenant, user_id, pks)

    async def user_history(self, tenant: str, user_id: str, limit: int) -> Query:
        """One round trip, one row: the user's pk and newest events as arrays (an empty
        query for an unknown user), ready for the algorithms."""
        kept, token = await self.store.online.history(tenant, user_id)
        if kept is not None:  # all of a short history, shared by the replicas
            return kept if len(kept) <= limit else _newest(kept, limit)
        row: Any = await self.store.hot.fetchrow(HOT_HISTORY, tenant, user_id, limit)
        if row is False:  # the database could not be read that way: the usual path
            async with self.engine.connect() as conn:
                params = {"t": tenant, "u": user_id, "n": limit}
                row = (await conn.execute(HISTORY, params)).mappings().first()
        if row is None:
            return Query(now=time.time())
        query = Query(
            int(row["id"]),
            np.asarray(row["items"] or (), np.int64),
            np.asarray(row["weights"] or (), np.float32),
            np.asarray(row["times"] or (), np.float64),
            time.time(),
        )
        if len(query) < limit:  # the whole history: worth keeping for the next request
            await self.store.online.remember(tenant, user_id, token, query)
        return query

    async def events_after(self, tenant: str, event_id: int, limit: int) -> list[RecordedEvent]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(EVENTS_AFTER, {"t": tenant, "after": event_id, "n": limit})
            ).all()
        return [
            RecordedEvent(r.user, r.item, r.user_id, r.item_id, r.type, r.weight, r.value, r.ts)
            for r in rows
        ]

    async def item_pks(self, tenant: str, external_ids: list[str]) -> dict[str, int]:
        return await self.store.snapshots.pks(tenant, external_ids)

    async def eligible_items(self, tenant: str, rules: ItemRules) -> np.ndarray:
        if rules == UNRESTRICTED:  # the common case: every visible item, from memory
            snap = await self.store.snapshots.get(tenant)
            if snap is not None:
                return snap.visible()
        stmt = select(ITEMS.c.id).where(*item_conditions(tenant, rules))
        async with self.engine.connect() as conn:
            ids = (await conn.execute(stmt)).scalars().all()
        return np.sort(np.asarray(ids, dtype=np.int64))

    async def item_categories(self, tenant: str, pks: list[int]) -> dict[int, list[str]]:
        records = await self.store.snapshots.records(tenant, pks)
        return {pk: list(r.categories) for pk, r in records.items()}

    async def recent_popularity(self, tenant: str, window: int) -> tuple[np.ndarray, np.ndarray]:
        pks, counters = await self.store.online.trending(tenant, ONLINE_POPULAR)
        if len(pks) >= ONLINE_POPULAR // 10:  # live counters, no scan of recent events
            order = np.argsort(pks)
            return pks[order], counters[order]
        recent = (
            select(EVENTS.c.item_id)
            .where(EVENTS.c.tenant_id == tenant, EVENTS.c.weight > 0)
            .order_by(EVENTS.c.occurred_at.desc())
            .limit(window)
            .subquery()
        )
        stmt = (
            select(recent.c.item_id, func.count())
            .group_by(recent.c.item_id)
            .order_by(recent.c.item_id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        pks = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        return pks, np.fromiter((r[1] for r in rows), np.int64, len(rows))

    async def items_together(
        self, tenant: str, item: int, limit: int
    ) -> tuple[np.ndarray, np.ndarray]:
        return await self.store.online.together(tenant, item, limit)

    async def search_items(
        self,
        tenant: str,
        text: str,
        vector: tuple[str, np.ndarray] | None,
        pool: int,
        rules: ItemRules,
        retrievers: tuple[str, ...],
    ) -> dict[str, list[Retrieved]]:
        return await self.store.search.retrieve(tenant, text, pool, rules, vector, retrievers)

    async def store_vectors(
        self, tenant: str, space: str, item_ids: np.ndarray, vectors: np.ndarray
    ) -> None:
        await self.store.vectors.upsert(tenant, space, item_ids.tolist(), vectors, rewrite=True)

    async def save_artifact(
        self,
        tenant: str,
        algorithm: str,
        blob: bytes,
        params: dict[str, Any],
        metrics: dict[str, Any],
    ) -> int:
        return await self.store.artifacts.save(tenant, algorithm, blob, params, metrics)

    async def latest_artifact(
        self, tenant: str, algorithm: str, *, with_blob: bool = True
    ) -> ArtifactRecord | None:
        return await self.store.artifacts.latest(tenant, algorithm, with_blob=with_blob)

    async def enqueue_training(
        self, tenant: str, algorithms: list[str] | None, configs: dict[str, Any]
    ) -> int:
        return await self.store.training_jobs.enqueue(tenant, algorithms, configs)

    async def training_job(self, tenant: str, job_id: int) -> JobRecord | None:
        return await self.store.training_jobs.get(tenant, job_id)

    async def claim_training(self) -> JobRecord | None:
        return await self.store.training_jobs.claim()

    async def finish_training(
        self,
        job_id: int,
        result: list[Any] | None,
        error_code: str | None = None,
        error: str | None = None,
    ) -> None:
        await self.store.training_jobs.finish(job_id, result, error_code, error)

    def tenant_scope(self, tenant: str) -> AbstractContextManager[None]:
        return tenant_scope(tenant)

    async def try_lock(self, key: str) -> AsyncConnection | None:
        """A session-level advisory lock, held by a dedicated connection until ``unlock``.
        The connection autocommits: an open transaction held for a whole training would
        stall every ``CREATE INDEX CONCURRENTLY`` (and vacuum) until the training ends."""
        plain = await self.engine.connect()
        conn = await plain.execution_options(isolation_level="AUTOCOMMIT")
        got = (
            await conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:k))"), {"k": key})
        ).scalar_one()
        if not got:
            await conn.close()
            return None
        conn.info["lock_key"] = key
        return conn

    async def unlock(self, handle: object) -> None:
        assert isinstance(handle, AsyncConnection)
        try:
            await handle.execute(
                text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": handle.info["lock_key"]}
            )
        finally:
            await handle.close()
