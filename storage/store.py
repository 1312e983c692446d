"""``Store``: the one object the API and the engines use to reach storage."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.cache import CacheBackend, make_backend
from storage.catalog import Catalog
from storage.database import make_engine, upgrade_database
from storage.events import EventRecorder
from storage.repositories import (
    ArtifactRepository,
    InteractionRepository,
    InteractionTypeRepository,
    ItemRepository,
    UserRepository,
    VectorRepository,
)
from storage.repositories.api_keys import ApiKeyRepository
from storage.tables import Tenant
from storage.tenancy import enforce_row_level_security
from storage.validation import Limits

log = logging.getLogger(__name__)


@dataclass
class Store:
    engine: AsyncEngine
    cache: CacheBackend
    limits: Limits
    items: ItemRepository
    users: UserRepository
    interactions: InteractionRepository
    interaction_types: InteractionTypeRepository
    artifacts: ArtifactRepository
    vectors: VectorRepository
    catalog: Catalog
    events: EventRecorder
    api_keys: ApiKeyRepository

    @classmethod
    async def open(
        cls,
        database_url: str,
        redis_url: str | None = None,
        *,
        limits: Limits | None = None,
        auto_create_items: bool = False,
        migrate: bool = True,
        pool_size: int = 10,
        cache_prefix: str = "recograph:",
    ) -> Store:
        engine = make_engine(database_url, pool_size=pool_size)
        if migrate:
            await upgrade_database(engine)
        enforce_row_level_security(engine)
        limits = limits or Limits()
        cache = make_backend(redis_url, cache_prefix)
        items, users = ItemRepository(engine), UserRepository(engine)
        interactions = InteractionRepository(engine)
        types = InteractionTypeRepository(engine)
        vectors = VectorRepository(engine)
        return cls(
            engine=engine,
            cache=cache,
            limits=limits,
            items=items,
            users=users,
            interactions=interactions,
            interaction_types=types,
            artifacts=ArtifactRepository(engine),
            vectors=vectors,
            catalog=Catalog(items, users, vectors, limits),
            events=EventRecorder(
                users,
                items,
                interactions,
                types,
                cache,
                limits,
                auto_create_items=auto_create_items,
            ),
            api_keys=ApiKeyRepository(engine),
        )

    async def ensure_tenant(self, tenant: str, name: str | None = None) -> None:
        tenants = Tenant.__table__  # type: ignore[attr-defined]
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(tenants).values(id=tenant, name=name or tenant).on_conflict_do_nothing()
            )
        await self.interaction_types.seed_defaults(tenant)

    async def tenants(self) -> list[str]:
        tenants = Tenant.__table__  # type: ignore[attr-defined]
        async with self.engine.connect() as conn:
            return list((await conn.execute(select(tenants.c.id).order_by(tenants.c.id))).scalars())

    async def database_ok(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            log.warning("database check failed: %s", exc)
            return False
        return True

    async def close(self) -> None:
        await self.cache.close()
        await self.engine.dispose()
