"""``Store``: the one object the API and the engines use to reach storage."""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.backends import CacheBackend, make_backend
from storage.catalog import Catalog
from storage.database import libpq_url, make_engine, upgrade_database
from storage.events import EventRecorder
from storage.hot_reads import HotReads
from storage.impressions import ImpressionStore
from storage.online_state import OnlineLimits, OnlineState, online_state
from storage.pages import PageStore
from storage.repositories import (
    ArtifactRepository,
    InteractionRepository,
    InteractionTypeRepository,
    ItemRepository,
    UserRepository,
    VectorRepository,
)
from storage.repositories.api_keys import KEYS_CHANNEL, ApiKeyRecord, ApiKeyRepository
from storage.repositories.placements import PlacementRepository
from storage.repositories.search import SearchRepository
from storage.repositories.training_jobs import TrainingJobRepository
from storage.repositories.webhooks import WebhookRepository
from storage.result_cache import ResultCache
from storage.snapshot import CatalogSnapshots
from storage.tables import TENANTS
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
    search: SearchRepository
    catalog: Catalog
    snapshots: CatalogSnapshots
    events: EventRecorder
    api_keys: ApiKeyRepository
    training_jobs: TrainingJobRepository
    webhooks: WebhookRepository
    #: finished recommendations, valid while their user's events and the catalogue are
    results: ResultCache
    #: reads on every recommendation's path, in one round trip
    hot: HotReads
    #: what every event updates at once: histories, trending counters, items used together
    online: OnlineState
    #: ranked lists kept for their next pages (``recommendations(after:)``)
    pages: PageStore
    #: scenarios and experiments
    placements: PlacementRepository
    #: items served to each user lately (rotation)
    impressions: ImpressionStore

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
        keep_model_versions: int = 3,
        subscription_queue_size: int = 1000,
        cross_process_bus: bool = True,
        result_cache_seconds: float = 0.0,
        online_limits: OnlineLimits | None = None,
        page_seconds: float = 1800.0,
        impression_seconds: float = 86_400.0,
    ) -> Store:
        """Open the database (migrating it) and the cache. Without Redis, messages cross
        processes through PostgreSQL unless ``cross_process_bus`` is off."""
        engine = make_engine(database_url, pool_size=pool_size)
        if migrate:
            await upgrade_database(engine)
        enforce_row_level_security(engine)
        limits = limits or Limits()
        cache = make_backend(
            redis_url,
            cache_prefix,
            subscription_queue_size,
            libpq_url(database_url) if cross_process_bus else None,
        )
        items, users = ItemRepository(engine), UserRepository(engine)
        interactions = InteractionRepository(engine)
        types = InteractionTypeRepository(engine)
        hot = HotReads(libpq_url(database_url))
        vectors = VectorRepository(engine, hot)
        results = ResultCache.of(cache, result_cache_seconds)
        online = online_state(cache, online_limits)
        snapshots = CatalogSnapshots(items, cache, results=results)
        webhooks = WebhookRepository(engine, cache)
        impressions = ImpressionStore(cache, impression_seconds)
        placements = PlacementRepository(engine, cache)
        return cls(
            engine=engine,
            cache=cache,
            limits=limits,
            items=items,
            users=users,
            interactions=interactions,
            interaction_types=types,
            artifacts=ArtifactRepository(engine, keep_model_versions, webhooks),
            vectors=vectors,
            search=SearchRepository(engine, vectors, hot),
            catalog=Catalog(items, users, vectors, limits, snapshots, online, impressions),
            snapshots=snapshots,
            events=EventRecorder(
                users,
                items,
                snapshots,
                interactions,
                types,
                cache,
                limits,
                auto_create_items=auto_create_items,
                webhooks=webhooks,
                results=results,
                online=online,
                placements=placements,
            ),
            api_keys=ApiKeyRepository(engine),
            training_jobs=TrainingJobRepository(engine),
            webhooks=webhooks,
            results=results,
            hot=hot,
            online=online,
            pages=PageStore(cache, page_seconds),
            placements=placements,
            impressions=impressions,
        )

    async def ensure_tenant(self, tenant: str, name: str | None = None) -> None:
        """Create the tenant if it is new. Its id may not be empty or contain ``:`` (keys
        of the online state join tenant and user with it)."""
        if not tenant or ":" in tenant:
            raise ValueError(f"a tenant id may not be empty or contain ':', got {tenant!r}")
        tenants = TENANTS
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(tenants).values(id=tenant, name=name or tenant).on_conflict_do_nothing()
            )
        await self.interaction_types.seed_defaults(tenant)

    async def revoke_api_key(self, tenant: str, prefix: str) -> bool:
        """Revoke a key and tell every replica, so open sockets using it close at once."""
        key_id = await self.api_keys.revoke(tenant, prefix)
        if key_id is None:
            return False
        await self.cache.publish(KEYS_CHANNEL, json.dumps({"revoked": key_id}).encode())
        return True

    async def set_api_key_origins(
        self, tenant: str, prefix: str, origins: list[str]
    ) -> ApiKeyRecord | None:
        """Change a key's web origins and tell every replica to forget its cached copy."""
        record = await self.api_keys.set_origins(tenant, prefix, origins)
        if record is not None:
            await self.cache.publish(KEYS_CHANNEL, json.dumps({"changed": record.id}).encode())
        return record

    async def tenant_secret(self, tenant: str) -> str:
        """The secret that signs the tenant's user tokens."""
        tenants = TENANTS
        stmt = select(tenants.c.token_secret).where(tenants.c.id == tenant)
        async with self.engine.connect() as conn:
            secret = (await conn.execute(stmt)).scalar_one_or_none()
        if secret is None:
            raise LookupError(f"no tenant {tenant!r}")
        return str(secret)

    async def rotate_tenant_secret(self, tenant: str) -> str:
        """A new user-token secret: every token signed with the old one stops working."""
        tenants = TENANTS
        secret = secrets.token_hex(32)
        async with self.engine.begin() as conn:
            await conn.execute(
                tenants.update().where(tenants.c.id == tenant).values(token_secret=secret)
            )
        return secret

    async def tenants(self) -> list[str]:
        tenants = TENANTS
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
        await self.snapshots.stop()
        await self.cache.close()
        await self.hot.close()
        await self.engine.dispose()
