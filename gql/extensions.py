"""The schema's extensions: the order in which every operation, on every transport, is
parsed, guarded, validated, run, masked and measured."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from cachetools import LRUCache
from graphql import GraphQLError
from strawberry.extensions import MaskErrors, MaxTokensLimiter, ParserCache, SchemaExtension

from gql.context import Context
from gql.errors import should_mask
from gql.query_guard import Analysis, QueryGuard, QueryLimits
from gql.server.auth import authorise_context
from gql.server.observability import Metrics, OperationMetrics
from gql.server.settings import Settings


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
) -> list[Callable[[], SchemaExtension] | type[SchemaExtension]]:
    """Schema extensions as factories. The query guard checks limits and scopes before
    anything is validated or run, on every transport, and caches validation by query text
    (it replaces strawberry's depth and alias limiters and validation cache, whose
    fragment walks are exponential)."""
    limits = QueryLimits(
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_aliases,
        max_cost=settings.max_query_cost,
        # a query names at most a batch of ids (and a filter of a few thousand values)
        max_query_values=2 * settings.max_batch_size + 10_000,
    )
    validated: LRUCache[str, list[GraphQLError]] = LRUCache(maxsize=512)
    analysed: LRUCache[tuple[Any, ...], Analysis] = LRUCache(maxsize=1024)

    def count(result: str) -> None:
        if metrics is not None:
            metrics.cache.labels("validation", result).inc()

    return [
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: ParserCache(maxsize=256),
        lambda: QueryGuard(limits, authorise_context, validated, count, analysed),
        FreshLoaders,
        lambda: MaskErrors(should_mask_error=should_mask),
        *([lambda: OperationMetrics(metrics)] if metrics is not None else []),
        *tracing(settings),
    ]


def tracing(settings: Settings) -> list[Callable[[], SchemaExtension] | type[SchemaExtension]]:
    if not settings.otel_tracing:
        return []
    from strawberry.extensions.tracing import OpenTelemetryExtension

    return [OpenTelemetryExtension]
