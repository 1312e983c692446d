"""The GraphQL schema: domain query/mutation types merged, plus ``node`` and extensions."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.tools import merge_types

from gql.auth import ScopeGuard
from gql.context import Context
from gql.errors import should_mask
from gql.interactions import (
    Interaction,
    InteractionMutations,
    InteractionQueries,
    InteractionSubscriptions,
)
from gql.items import Item, ItemMutations, ItemQueries
from gql.keys import KeyMutations, KeyQueries
from gql.observability import Metrics, OperationMetrics
from gql.recommendations import RecommendationMutations, RecommendationQueries
from gql.relay import Node, from_global_id
from gql.settings import Settings
from gql.users import User, UserMutations, UserQueries

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


def extensions(
    settings: Settings, metrics: Metrics | None = None
) -> list[Callable[[], SchemaExtension]]:
    """Schema extensions as factories. The limiters are built once and shared: each builds
    its validation rule class in ``__init__``, and the validation cache is keyed by those
    classes, so a limiter built per request would make every lookup miss."""
    depth = QueryDepthLimiter(max_depth=settings.max_query_depth)
    aliases = MaxAliasesLimiter(max_alias_count=settings.max_aliases)
    return [
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: ParserCache(maxsize=512),
        lambda: depth,
        lambda: aliases,
        lambda: ValidationCache(maxsize=512),
        lambda: MaskErrors(should_mask_error=should_mask),
        ScopeGuard,
        *([lambda: OperationMetrics(metrics)] if metrics is not None else []),
        *tracing(settings),
    ]


def tracing(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    if not settings.otel_tracing:
        return []
    from strawberry.extensions.tracing import OpenTelemetryExtension

    return [OpenTelemetryExtension]


def build_schema(
    settings: Settings | None = None, metrics: Metrics | None = None
) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Item, User, Interaction],
        extensions=extensions(settings or Settings(), metrics),
    )


def sdl() -> str:
    return build_schema().as_str() + "\n"
