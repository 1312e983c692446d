"""The GraphQL schema: domain query/mutation types merged, plus ``node`` and extensions."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import strawberry
from cachetools import LRUCache
from graphql import GraphQLError
from strawberry.extensions import MaskErrors, MaxTokensLimiter, ParserCache, SchemaExtension
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from gql.context import Context
from gql.errors import log_errors, should_mask
from gql.query_guard import QueryGuard, QueryLimits
from gql.relay import Node, from_global_id
from gql.server.auth import authorise_context
from gql.server.observability import Metrics, OperationMetrics
from gql.server.settings import Settings
from gql.types.api_keys import KeyMutations, KeyQueries
from gql.types.interactions import (
    Interaction,
    InteractionMutations,
    InteractionQueries,
    InteractionSubscriptions,
)
from gql.types.items import Item, ItemMutations, ItemQueries
from gql.types.recommendations import RecommendationMutations, RecommendationQueries
from gql.types.users import User, UserMutations, UserQueries

Info = strawberry.Info[Context, None]


@strawberry.type
class NodeQueries:
    @strawberry.field(description="Any object by its global id.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        decoded = from_global_id(id)
        if decoded is None:
            return None
        kind, key = decoded
        loaders = info.context.loaders
        if kind == "Item":
            item = await loaders.items_by_id.load(key)
            return Item.of(item) if item else None
        if kind == "User":
            user = await loaders.users_by_id.load(key)
            return User.of(user) if user else None
        return None


Query = merge_types(
    "Query",
    (ItemQueries, UserQueries, InteractionQueries, RecommendationQueries, KeyQueries, NodeQueries),
)
Mutation = merge_types(
    "Mutation",
    (ItemMutations, UserMutations, InteractionMutations, RecommendationMutations, KeyMutations),
)
Subscription = merge_types("Subscription", (InteractionSubscriptions,))


class FreshLoaders(SchemaExtension):
    """Each operation on a socket gets new DataLoaders: a long-lived socket must never
    serve an item as it was cached by an earlier operation."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context) and context.websocket:
            context.fresh_loaders()
        yield


def extensions(
    settings: Settings, metrics: Metrics | None = None
) -> list[Callable[[], SchemaExtension]]:
    """Schema extensions as factories. The query guard checks limits and scopes before
    anything is validated or run, on every transport, and caches validation by query text
    (it replaces strawberry's depth and alias limiters and validation cache, whose
    fragment walks are exponential)."""
    limits = QueryLimits(
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_aliases,
        max_cost=settings.max_query_cost,
    )
    validated: LRUCache[str, list[GraphQLError]] = LRUCache(maxsize=1024)

    def count(result: str) -> None:
        if metrics is not None:
            metrics.cache.labels("validation", result).inc()

    return [
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: ParserCache(maxsize=512),
        lambda: QueryGuard(limits, authorise_context, validated, count),
        FreshLoaders,
        lambda: MaskErrors(should_mask_error=should_mask),
        *([lambda: OperationMetrics(metrics)] if metrics is not None else []),
        *tracing(settings),
    ]


def tracing(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    if not settings.otel_tracing:
        return []
    from strawberry.extensions.tracing import OpenTelemetryExtension

    return [OpenTelemetryExtension]


class RecographSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_errors(errors)


def build_schema(
    settings: Settings | None = None, metrics: Metrics | None = None
) -> strawberry.Schema:
    return RecographSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Item, User, Interaction],
        extensions=extensions(settings or Settings(), metrics),
    )


def sdl() -> str:
    return build_schema().as_str() + "\n"
