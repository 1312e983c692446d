"""Whole responses of repeated recommendation queries, answered without executing them.

A query whose only root field is ``recommendations`` is the service's hottest request, and
most of a cached answer's cost is GraphQL completing its result again. Such an operation's
response is kept in the recommendation cache under a key of everything that could change
it (tenant, the key and user token asking, the query text, operation name and variables,
the tenant's model versions and this service's defaults), stamped like every cached list
with the user's event version and the catalogue version read *before* it was computed. A
repeated request whose stamp is still current gets the stored data; anything else runs as
usual. Only responses without errors are kept, so a query is never answered from the cache
unless it once ran in full (guard, scopes and all) for the same key and user."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache
from graphql import (
    FieldNode,
    GraphQLError,
    NullValueNode,
    OperationDefinitionNode,
    OperationType,
    StringValueNode,
    VariableNode,
    parse,
)

from gql.context import Context
from gql.server.settings import Settings

#: query texts whose shape is remembered (cacheable or not)
SHAPES = 1000
#: larger query texts are never looked at
MAX_QUERY = 4000
#: answers to these arguments change without the user's events or the models changing
#: (a scenario's new version, an experiment starting; impressions with each list served)
UNCACHED_ARGUMENTS = frozenset({"scenario", "rotation"})
#: larger responses are not stored
MAX_RESPONSE_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Shape:
    """Where a cacheable query names its user: a variable, or a literal."""

    variable: str | None
    literal: str | None
    #: the operation's declared variables: a request sending others is not cached (they
    #: change nothing, and would only make new entries)
    declared: frozenset[str] = frozenset()
    #: variables of arguments whose answers are never cached: a request giving any of
    #: them a value is not cached
    uncached: frozenset[str] = frozenset()


def _shape(query: str, operation_name: str | None) -> Shape | None:
    try:
        document = parse(query, no_location=True)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != len(document.definitions):
        return None  # fragments: not the simple shape
    chosen = [
        o
        for o in operations
        if operation_name is None or (o.name and o.name.value == operation_name)
    ]
    if len(chosen) != 1 or chosen[0].operation != OperationType.QUERY:
        return None
    roots = chosen[0].selection_set.selections
    if len(roots) != 1 or not isinstance(roots[0], FieldNode):
        return None
    field = roots[0]
    if field.name.value != "recommendations" or field.directives:
        return None
    uncached = set()
    for a in field.arguments or ():
        if a.name.value not in UNCACHED_ARGUMENTS or isinstance(a.value, NullValueNode):
            continue
        if not isinstance(a.value, VariableNode):
            return None  # a literal scenario or rotation: never cached
        uncached.add(a.value.name.value)
    defaults = {
        v.variable.name.value
        for v in chosen[0].variable_definitions or ()
        if v.default_value is not None and not isinstance(v.default_value, NullValueNode)
    }
    if uncached & defaults:
        return None  # a default value counts as given
    declared = frozenset(v.variable.name.value for v in chosen[0].variable_definitions or ())
    for argument in field.arguments or ():
        if argument.name.value != "userId":
            continue
        if isinstance(argument.value, VariableNode):
            return Shape(argument.value.name.value, None, declared, frozenset(uncached))
        if isinstance(argument.value, StringValueNode):
            return Shape(None, argument.value.value, declared, frozenset(uncached))
    return None


class ResponseCache:
    def __init__(self, settings: Settings) -> None:
        self._shapes: LRUCache[tuple[str, str | None], Shape | None] = LRUCache(SHAPES)
        # replicas with other defaults must not share answers
        self._defaults = json.dumps(
            [
                settings.default_algorithms,
                settings.calibration,
                settings.candidate_pool,
                settings.max_page_size,
            ]
        )

    def shape(self, query: str | None, operation_name: str | None) -> Shape | None:
        if not query or len(query) > MAX_QUERY:
            return None
        key = (query, operation_name)
        if key not in self._shapes:
            self._shapes[key] = _shape(query, operation_name)
        return self._shapes[key]

    async def key(
        self,
        context: Context,
        query: str,
        operation_name: str | None,
        variables: dict[str, Any] | None,
    ) -> str:
        models = await context.engine.models(context.tenant)
        versions = sorted((name, m.version) for name, m in models.items())
        auth = context.auth
        parts = [
            "response",
            context.tenant,
            auth.key_id,
            sorted(auth.scopes),
            auth.user,
            query,
            operation_name,
            variables or {},
            versions,
            self._defaults,
        ]
        text = json.dumps(parts, sort_keys=True, default=repr, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @staticmethod
    def user_of(shape: Shape, variables: dict[str, Any] | None) -> str | None:
        """The user a cacheable request asks for; None if it is not to be cached."""
        if variables and not set(variables) <= shape.declared:
            return None
        if any((variables or {}).get(name) is not None for name in shape.uncached):
            return None
        if shape.literal is not None:
            return shape.literal
        value = (variables or {}).get(shape.variable or "")
        return value if isinstance(value, str) else None
