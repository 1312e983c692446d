"""The per-request context: the store, the tenant and fresh DataLoaders.

Loaders are built for every request so that batching and caching never leak between
requests (or tenants); resolving N items of a page or of a user's history costs one query.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from strawberry.dataloader import DataLoader

from engines.service import RecommendationService
from engines.training import Trainer
from gql.auth import OPEN, Auth
from gql.settings import Settings
from storage.records import ItemRecord, UserRecord
from storage.store import Store
from storage.tenancy import set_tenant

K = TypeVar("K")
V = TypeVar("V")


def _loader(
    fetch: Callable[[str, Iterable[K]], Awaitable[Mapping[K, V]]], tenant: str
) -> DataLoader[K, V | None]:
    async def load(keys: list[K]) -> list[V | None]:
        found = await fetch(tenant, keys)
        return [found.get(k) for k in keys]

    return DataLoader(load_fn=load)


@dataclass
class Loaders:
    items_by_pk: DataLoader[int, ItemRecord | None]
    items_by_id: DataLoader[str, ItemRecord | None]
    users_by_pk: DataLoader[int, UserRecord | None]
    users_by_id: DataLoader[str, UserRecord | None]

    @classmethod
    def build(cls, store: Store, tenant: str) -> Loaders:
        return cls(
            items_by_pk=_loader(store.items.by_pks, tenant),
            items_by_id=_loader(store.items.by_external_ids, tenant),
            users_by_pk=_loader(store.users.by_pks, tenant),
            users_by_id=_loader(store.users.by_external_ids, tenant),
        )


@dataclass
class Context:
    store: Store
    engine: RecommendationService
    trainer: Trainer
    settings: Settings
    tenant: str
    loaders: Loaders
    auth: Auth = OPEN
    request: web.Request | None = None
    response: Any = None

    @classmethod
    def build(
        cls,
        store: Store,
        engine: RecommendationService,
        trainer: Trainer,
        settings: Settings,
        request: web.Request | None = None,
        response: Any = None,
        auth: Auth = OPEN,
    ) -> Context:
        """A context for one request: its tenant is the API key's, never the client's.
        The request's transactions then run under row-level security for that tenant."""
        set_tenant(auth.tenant)
        return cls(
            store,
            engine,
            trainer,
            settings,
            auth.tenant,
            Loaders.build(store, auth.tenant),
            auth,
            request,
            response,
        )
