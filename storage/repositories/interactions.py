"""Interaction events: idempotent bulk insert, per-user history, export."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.records import InteractionRecord
from storage.sql import any_of, in_transaction
from storage.tables import INTERACTIONS, ITEMS, USERS

T = INTERACTIONS
#: batches of at least this many events are written with COPY and one merge
COPY_FROM_ROWS = 1000
STAGED = (
    "user_id",
    "item_id",
    "type",
    "weight",
    "value",
    "occurred_at",
    "metadata",
    "idempotency_key",
    "recommendation_id",
    "n",
)
STAGING_DDL = (
    "CREATE TEMP TABLE interactions_staging (user_id bigint, item_id bigint, type text, "
    "weight float8, value float8, occurred_at timestamptz, metadata jsonb, "
    "idempotency_key text, recommendation_id text, n int) ON COMMIT DROP"
)
#: rows go in in the staged order (idempotency keys sorted: concurrent batches sharing keys
#: lock them in one order)
MERGE_STAGED = text(
    "INSERT INTO interactions (tenant_id, user_id, item_id, type, weight, value, occurred_at, "
    "metadata, idempotency_key, recommendation_id) SELECT :t, user_id, item_id, type, "
    "weight, value, occurred_at, metadata, idempotency_key, recommendation_id "
    "FROM interactions_staging ORDER BY n "
    "ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING "
    "RETURNING idempotency_key"
)


def _record(row: Row[Any]) -> InteractionRecord:
    m = row._mapping
    return InteractionRecord(
        pk=m["id"],
        user_pk=m["user_id"],
        item_pk=m["item_id"],
        type=m["type"],
        weight=m["weight"],
        value=m["value"],
        occurred_at=m["occurred_at"],
        metadata=m["metadata"],
        idempotency_key=m["idempotency_key"],
        recommendation_id=m.get("recommendation_id"),
    )


class InteractionRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def insert_many(
        self, tenant: str, rows: Sequence[dict[str, Any]], conn: AsyncConnection | None = None
    ) -> list[int]:
        """Insert events; a row whose idempotency key is already stored is skipped.

        ``rows`` hold ``user_id``, ``item_id`` (primary keys), ``type``, ``weight``, ``value``,
        ``occurred_at``, ``metadata`` and ``idempotency_key``; keys must be unique within
        ``rows``. Returns the indexes of the rows that were stored. All rows commit in one
        transaction (``conn``'s, when given), so an acknowledged batch is durable as a whole.
        """
        inserted: list[int] = []
        if not rows:
            return inserted
        # One cached statement run as "insertmanyvalues" batches: compiling a fresh
        # multi-row VALUES per call cost most of the time of a bulk import.
        stmt = (
            insert(T)
            .on_conflict_do_nothing(
                index_elements=[T.c.tenant_id, T.c.idempotency_key],
                index_where=text("idempotency_key IS NOT NULL"),
            )
            .returning(T.c.idempotency_key)
        )
        # keys in one order: concurrent batches sharing keys wait for each other, never
        # deadlock
        ordered = sorted(
            rows, key=lambda r: (r.get("idempotency_key") is None, r.get("idempotency_key") or "")
        )
        async with in_transaction(self.engine, conn) as tx:
            if len(ordered) >= COPY_FROM_ROWS:
                new_keys = await self._copy_and_merge(tx, tenant, ordered)
            else:
                result = await tx.execute(stmt, [{"tenant_id": tenant, **r} for r in ordered])
                new_keys = set(result.scalars())
        for i, r in enumerate(rows):
            key = r.get("idempotency_key")
            if key is None or key in new_keys:
                inserted.append(i)
        return inserted

    async def _copy_and_merge(
        self, tx: AsyncConnection, tenant: str, rows: Sequence[dict[str, Any]]
    ) -> set[str]:
        """A big batch: COPY into a staging table (binary, no statement per row), then one
        set-based ``INSERT … SELECT … ON CONFLICT DO NOTHING`` into the events table."""
        # through SQLAlchemy first, so the transaction (and its tenant settings) has begun
        await tx.execute(text(STAGING_DDL))
        raw = await tx.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.copy_records_to_table(
            "interactions_staging",
            columns=STAGED,
            records=[
                (
                    r["user_id"],
                    r["item_id"],
                    r["type"],
                    float(r["weight"]),
                    r.get("value"),
                    r["occurred_at"],
                    json.dumps(r.get("metadata") or {}),
                    r.get("idempotency_key"),
                    r.get("recommendation_id"),
                    n,
                )
                for n, r in enumerate(rows)
            ],
        )
        result = await tx.execute(MERGE_STAGED, {"t": tenant})
        return {k for k in result.scalars() if k is not None}

    async def pages(
        self, tenant: str, keys: Sequence[tuple[int, int, tuple[datetime, int] | None]]
    ) -> dict[tuple[int, int, tuple[datetime, int] | None], list[InteractionRecord]]:
        """Pages of many users' histories, newest first: for each ``(user pk, limit, after)``
        the user's ``limit`` events after the keyset ``after``. One statement per distinct
        ``(limit, after)``, each an index-ordered LATERAL scan per user."""
        groups: dict[tuple[int, tuple[datetime, int] | None], list[int]] = {}
        for user, limit, after in keys:
            groups.setdefault((limit, after), []).append(user)
        out: dict[tuple[int, int, tuple[datetime, int] | None], list[InteractionRecord]] = {}
        async with self.engine.connect() as conn:
            for (limit, after), users in groups.items():
                cursor = "AND (e.occurred_at, e.id) < (:ts, :pk)" if after is not None else ""
                sql = text(
                    "SELECT e.* FROM unnest(CAST(:users AS bigint[])) AS u(id) "
                    "CROSS JOIN LATERAL (SELECT * FROM interactions e "
                    f"WHERE e.tenant_id = :tenant AND e.user_id = u.id {cursor} "
                    "ORDER BY e.occurred_at DESC, e.id DESC LIMIT :limit) e"
                )
                params: dict[str, Any] = {"users": users, "tenant": tenant, "limit": limit}
                if after is not None:
                    params |= {"ts": after[0], "pk": after[1]}
                for row in (await conn.execute(sql, params)).all():
                    out.setdefault((row.user_id, limit, after), []).append(_record(row))
        return out

    async def by_pks(self, tenant: str, pks: Iterable[int]) -> dict[int, InteractionRecord]:
        wanted = list(dict.fromkeys(pks))
        if not wanted:
            return {}
        stmt = select(T).where(T.c.tenant_id == tenant, any_of(T.c.id, wanted))
        async with self.engine.connect() as conn:
            return {r.id: _record(r) for r in (await conn.execute(stmt)).all()}

    async def count(self, tenant: str) -> int:
        stmt = select(func.count()).select_from(T).where(T.c.tenant_id == tenant)
        async with self.engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def volume(
        self, tenant: str, start: datetime, bucket_seconds: int, buckets: int
    ) -> list[int]:
        """Events per time bucket by when they arrived (``created_at``, the time of the
        transaction that stored them; not the events' own ``occurred_at``): ``buckets``
        consecutive buckets of ``bucket_seconds`` from ``start``, empty ones included,
        counted and grouped in the database. No index leads with ``created_at``: this reads
        the tenant's events (an admin's dashboard, not a serving path)."""
        end = start + timedelta(seconds=bucket_seconds * buckets)
        arrived = T.c.created_at
        bucket = func.floor(
            (func.extract("epoch", arrived) - start.timestamp()) / bucket_seconds
        ).label("bucket")
        stmt = (
            select(bucket, func.count())
            .where(T.c.tenant_id == tenant, arrived >= start, arrived < end)
            .group_by(bucket)
        )
        counts = [0] * buckets
        async with self.engine.connect() as conn:
            for index, events in (await conn.execute(stmt)).all():
                if 0 <= int(index) < buckets:
                    counts[int(index)] = int(events)
        return counts

    async def iterate_export(self, tenant: str, batch: int = 10_000) -> Any:
        """All events with the clients' user and item ids, in insertion order."""
        after = 0
        while True:
            stmt = (
                select(
                    T.c.id,
                    USERS.c.external_id.label("user_id"),
                    ITEMS.c.external_id.label("item_id"),
                    T.c.type,
                    T.c.weight,
                    T.c.value,
                    T.c.occurred_at,
                    T.c.metadata,
                    T.c.idempotency_key,
                )
                .join(USERS, USERS.c.id == T.c.user_id)
                .join(ITEMS, ITEMS.c.id == T.c.item_id)
                .where(T.c.tenant_id == tenant, T.c.id > after)
                .order_by(T.c.id)
                .limit(batch)
            )
            async with self.engine.connect() as conn:
                rows = (await conn.execute(stmt)).all()
            if not rows:
                return
            for r in rows:
                yield dict(r._mapping)
            after = rows[-1].id
