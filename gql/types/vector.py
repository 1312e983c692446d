"""The ``Vector`` scalar: an embedding, sent and returned as a JSON array of numbers.

As ``[Float!]`` graphql-core coerced every number on its own (a type lookup, a nesting
check and a float conversion each): a third of an ``itemsBulkUpsert`` of 64-dimensional
vectors. As one scalar the list is checked in one pass. Range, dimension and the zero
vector are checked with the rest of the row (``storage.validation.check_embedding``), so
their errors are ``userErrors`` naming the row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NewType

import strawberry
from graphql import FloatValueNode, GraphQLError, IntValueNode, ListValueNode, ValueNode

#: annotate fields with this; the schema maps it to :data:`VECTOR` (``scalar_map``)
Vector = NewType("Vector", list[float])

_NUMBERS = {float, int}
_MESSAGE = "Vector must be a list of numbers"


def parse_vector(value: Any) -> list[float]:
    if type(value) is not list:
        if type(value) in _NUMBERS:  # GraphQL's input coercion: one value is a list of one
            return [float(value)]
        raise ValueError(f"{_MESSAGE}, not {type(value).__name__}")
    if not set(map(type, value)) <= _NUMBERS:  # type() is exact: a bool is no number here
        at = next(n for n, v in enumerate(value) if type(v) not in _NUMBERS)
        raise ValueError(f"{_MESSAGE}; element {at} is {type(value[at]).__name__}")
    return value


def parse_vector_literal(node: ValueNode, variables: Mapping[str, Any] | None = None) -> Any:
    values = node.values if isinstance(node, ListValueNode) else (node,)
    for at, v in enumerate(values):
        if not isinstance(v, FloatValueNode | IntValueNode):
            # a GraphQLError: anything else would be masked as a fault in validation
            raise GraphQLError(f"{_MESSAGE}; element {at} is no number", v)
    return [float(v.value) for v in values]  # type: ignore[attr-defined]


VECTOR = strawberry.scalar(
    name="Vector",
    description="An embedding: a JSON array of numbers, e.g. `[0.12, -0.5, 0.33]`.",
    serialize=lambda value: [float(v) for v in value],
    parse_value=parse_vector,
    parse_literal=parse_vector_literal,
)
