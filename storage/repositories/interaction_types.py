"""Interaction types and their weights, per tenant."""

from __future__ import annotations

from collections.abc import Iterable

from cachetools import TTLCache
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.records import InteractionTypeRecord
from storage.tables import DEFAULT_INTERACTION_TYPES, INTERACTION_TYPES

T = INTERACTION_TYPES


class InteractionTypeRepository:
    def __init__(self, engine: AsyncEngine, cache_seconds: float = 5.0) -> None:
        self.engine = engine
        self._cached: TTLCache[str, dict[str, InteractionTypeRecord]] = TTLCache(
            10_000, cache_seconds
        )

    async def cached(
        self, tenant: str, *, names: Iterable[str] = ()
    ) -> dict[str, InteractionTypeRecord]:
        """The tenant's types, cached for a few seconds (a changed weight reaches every
        process within that); a name the cache lacks is looked up at once."""
        types = self._cached.get(tenant)
        if types is None or any(n not in types for n in names):
            types = await self.all(tenant)
            self._cached[tenant] = types
        return types

    async def all(self, tenant: str) -> dict[str, InteractionTypeRecord]:
        stmt = select(T).where(T.c.tenant_id == tenant).order_by(T.c.name)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return {
            r.name: InteractionTypeRecord(
                name=r.name,
                weight=r.weight,
                value_based=r.value_based,
                neutral_value=r.neutral_value,
                description=r.description,
            )
            for r in rows
        }

    async def upsert(self, tenant: str, rec: InteractionTypeRecord) -> InteractionTypeRecord:
        stmt = insert(T).values(
            tenant_id=tenant,
            name=rec.name,
            weight=rec.weight,
            value_based=rec.value_based,
            neutral_value=rec.neutral_value,
            description=rec.description,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[T.c.tenant_id, T.c.name],
            set_={
                "weight": stmt.excluded.weight,
                "value_based": stmt.excluded.value_based,
                "neutral_value": stmt.excluded.neutral_value,
                "description": stmt.excluded.description,
                "updated_at": func.now(),
            },
        )
        async with self.engine.begin() as conn:
            await conn.execute(stmt)
        self._cached.pop(tenant, None)
        return rec

    async def seed_defaults(self, tenant: str) -> None:
        """Give a new tenant the default types (view 1, click 2, ..., rating by value)."""
        values = [
            {"tenant_id": tenant, "name": n, "weight": w, "value_based": v, "neutral_value": z}
            for n, w, v, z in DEFAULT_INTERACTION_TYPES
        ]
        async with self.engine.begin() as conn:
            await conn.execute(insert(T).values(values).on_conflict_do_nothing())
