"""The per-request context: the store, the caller, the tenant and fresh DataLoaders.

Loaders are built for every request (and every operation on a socket) so that batching and
caching never leak between requests or tenants, and a long-lived socket never serves an
item as it was when the socket opened; resolving N items of a page costs one query.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from strawberry.dataloader import DataLoader

from engines.serving.service import RecommendationService
from engines.training.trainer import Trainer
from gql.server.auth import OPEN, Auth
from gql.server.settings import Settings
from storage.records import InteractionRecord, ItemRecord, UserRecord
from storage.store import Store
from storage.tenancy import set_tenant

K = TypeVar("K")
V = TypeVar("V")
#: a page of one user's history: (user pk, page size + 1, keyset cursor or None)
HistoryPage = tuple[int, int, tuple[Any, int] | None]


def _loader(
    fetch: Callable[[str, Iterable[K]], Awaitable[Mapping[K, V]]], tenant: str
) -> DataLoader[K, V | None]:
    async def load(keys: list[K]) -> list[V | None]:
        found = await fetch(tenant, keys)
        return [found.get(k) for k in keys]

    return DataLoader(load_fn=load)


def _history_loader(store: Store, tenant: str) -> DataLoader[HistoryPage, list[InteractionRecord]]:
    async def load(keys: list[HistoryPage]) -> list[list[InteractionRecord]]:
        found = await store.interactions.pages(tenant, keys)
        return [found.get(k, []) for k in keys]

    return DataLoader(load_fn=load)


@dataclass
class Loaders:
    items_by_pk: DataLoader[int, ItemRecord | None]
    items_by_id: DataLoader[str, ItemRecord | None]
    users_by_pk: DataLoader[int, UserRecord | None]
    users_by_id: DataLoader[str, UserRecord | None]
    interactions_by_pk: DataLoader[int, InteractionRecord | None]
    history: DataLoader[HistoryPage, list[InteractionRecord]]

    @classmethod
    def build(cls, store: Store, tenant: str) -> Loaders:
        return cls(
            items_by_pk=_loader(store.snapshots.records, tenant),
            items_by_id=_loader(store.snapshots.by_external_ids, tenant),
            users_by_pk=_loader(store.users.by_pks, tenant),
            users_by_id=_loader(store.users.by_external_ids, tenant),
            interactions_by_pk=_loader(store.interactions.by_pks, tenant),
            history=_history_loader(store, tenant),
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
    #: a socket's credentials, checked again for each of its operations
    credentials: str | None = None
    user_token: str | None = None
    #: the graphql-transport-ws connection_init payload (set by strawberry)
    connection_params: Any = None

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
        credentials: str | None = None,
        user_token: str | None = None,
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
            credentials,
            user_token,
        )

    @property
    def websocket(self) -> bool:
        return isinstance(self.response, web.WebSocketResponse)

    def login(self, auth: Auth, credentials: str | None, user_token: str | None) -> None:
        """A socket's connection_init authenticated it."""
        self.auth, self.tenant = auth, auth.tenant
        self.credentials, self.user_token = credentials, user_token
        set_tenant(auth.tenant)
        self.fresh_loaders()

    def fresh_loaders(self) -> None:
        self.loaders = Loaders.build(self.store, self.tenant)


#: RFC 6455's "try again later": the client fell behind and may reconnect
CLOSE_SLOW_CONSUMER = 1013


async def drop_slow_consumer(context: Context) -> None:
    """Close a socket whose subscriber fell a whole queue behind."""
    if context.websocket:
        await context.response.close(code=CLOSE_SLOW_CONSUMER, message=b"slow consumer")
