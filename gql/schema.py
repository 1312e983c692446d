"""The GraphQL schema: the domain types of ``gql.types`` merged into Query, Mutation and
Subscription, with the extensions of ``gql.extensions``."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from gql.errors import log_errors
from gql.extensions import extensions
from gql.server.observability import Metrics
from gql.server.settings import Settings
from gql.types.api_keys import KeyMutations, KeyQueries
from gql.types.interactions import (
    Interaction,
    InteractionMutations,
    InteractionQueries,
    InteractionSubscriptions,
)
from gql.types.items import Item, ItemMutations, ItemQueries
from gql.types.models import ModelMutations, ModelQueries
from gql.types.node import NodeQueries
from gql.types.recommendations import RecommendationQueries
from gql.types.users import User, UserMutations, UserQueries

Query = merge_types(
    "Query",
    (
        ItemQueries,
        UserQueries,
        InteractionQueries,
        RecommendationQueries,
        ModelQueries,
        KeyQueries,
        NodeQueries,
    ),
)
Mutation = merge_types(
    "Mutation",
    (ItemMutations, UserMutations, InteractionMutations, ModelMutations, KeyMutations),
)
Subscription = merge_types("Subscription", (InteractionSubscriptions,))


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
